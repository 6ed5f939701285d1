/*
 * ip.c - IP addresses: validated text in, canonical binary stored.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "feed/feed.h"
#include "store/error.h"

int ip_parse(uint64_t err_id, const char *field, const char *text,
	     uint8_t bin[16], uint8_t *kind)
{
	if (inet_pton(AF_INET, text, bin) == 1) {
		*kind = REC_IP_V4;
		return EF_OK;
	}
	if (inet_pton(AF_INET6, text, bin) == 1) {
		*kind = REC_IP_V6;
		return EF_OK;
	}
	return ef__err(err_id, EF_EINVAL,
		       "%s: '%.64s' is not an IPv4 or IPv6 address", field,
		       text);
}

void ip_format(uint8_t kind, const uint8_t *bin, char *buf, size_t cap)
{
	if (!inet_ntop(kind == REC_IP_V4 ? AF_INET : AF_INET6, bin, buf,
		       (socklen_t)cap))
		snprintf(buf, cap, "?");
}
