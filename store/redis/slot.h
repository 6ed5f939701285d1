/*
 * slot.h - Redis Cluster key slots: which of the 16384 hash slots a key
 * belongs to (the cluster specification's HASH_SLOT), so that a command is
 * sent to the node that serves it.
 *
 * hiredis 0.14 has no cluster support, so this is written here from the
 * specification: CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0,
 * no reflection, no final xor) of the key's hash tag, modulo 16384.
 */
#ifndef EF_STORE_REDIS_SLOT_H
#define EF_STORE_REDIS_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define RSLOT_COUNT 16384

/* CRC16-XMODEM of @len bytes at @p (the specification's check value:
 * "123456789" gives 0x31C3). */
uint16_t rslot_crc16(const void *p, size_t len);

/* The bytes of @key that are hashed: what lies between the first '{' and
 * the first '}' after it, if that is at least one byte; else the whole
 * key. Sets *@off and *@n. */
void rslot_tag(const void *key, size_t len, size_t *off, size_t *n);

/* The slot of @key, 0..RSLOT_COUNT-1. */
unsigned rslot_of(const void *key, size_t len);

#endif
