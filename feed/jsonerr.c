/*
 * jsonerr.c - describe a jansson error by its code (see jsonerr.h).
 */
#include "feed/jsonerr.h"

const char *jsonerr_what(const json_error_t *e)
{
	switch (json_error_code(e)) {
	case json_error_out_of_memory: return "out of memory";
	case json_error_stack_overflow: return "nested too deeply";
	case json_error_invalid_utf8: return "invalid UTF-8";
	case json_error_premature_end_of_input:
		return "the text ends too early";
	case json_error_end_of_input_expected:
		return "more text after the end of the value";
	case json_error_invalid_syntax: return "invalid syntax";
	case json_error_null_character: return "a NUL character";
	case json_error_null_byte_in_key: return "a NUL byte in a key";
	case json_error_duplicate_key: return "a key appears twice";
	case json_error_numeric_overflow: return "a number out of range";
	case json_error_wrong_type: return "not the expected type";
	case json_error_invalid_format: return "invalid format";
	default: return "not valid JSON";
	}
}
