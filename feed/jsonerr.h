/*
 * jsonerr.h - what is wrong with a JSON text, without its bytes.
 *
 * jansson's error text quotes the token it stopped at ("invalid token near
 * '\"203.0.113.77'"), and whatever fails to parse here may be legacy data,
 * a payload or an import file that holds IP addresses. Messages, quarantine
 * reasons and check findings say where (line, column, byte) and what, from
 * jansson's error code, and never quote the input.
 */
#ifndef EF_FEED_JSONERR_H
#define EF_FEED_JSONERR_H

#include <jansson.h>

/* A fixed description of @e's error ("unexpected end of input", ...). */
const char *jsonerr_what(const json_error_t *e);

#endif
