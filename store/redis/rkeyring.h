/*
 * rkeyring.h - keyring.h's window keys on Redis Cluster (rkeyring.c):
 * keyring.c hands every call of a keyring opened on a cluster store to
 * these, with the same contract.
 */
#ifndef EF_STORE_REDIS_RKEYRING_H
#define EF_STORE_REDIS_RKEYRING_H

#include <stdint.h>

#include "store/keyring.h"

struct reng;
typedef struct rkeyring rkeyring;

int rkr_open(rkeyring **out, struct reng *e, int rdonly, uint64_t err_id);
void rkr_close(rkeyring *r);
int rkr_get(rkeyring *r, uint32_t win, int create,
	    uint8_t key[KEYRING_KEYBYTES]);
int rkr_get_ephemeral(rkeyring *r, uint32_t win,
		      uint8_t key[KEYRING_KEYBYTES]);
int rkr_destroy_before(rkeyring *r, uint32_t before, uint64_t *destroyed,
		       uint64_t *wiped);
int rkr_health(rkeyring *r, keyring_health *out);
long rkr_count_window(rkeyring *r, uint32_t win);

#endif
