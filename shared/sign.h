/* sign.h - Pusher's signatures: HMAC-SHA256 hex digests, body MD5, constant
 * time comparison, channel/user authorisation strings and the REST API's
 * canonical string. The only file that touches OpenSSL's digests. */
#ifndef MN_SIGN_H
#define MN_SIGN_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define SIGN_HEX_LEN 64 /* lowercase hex of a SHA-256 HMAC */
#define SIGN_MD5_LEN 32

/* out receives SIGN_HEX_LEN lowercase hex digits and a NUL. */
void sign_hmac_hex(const char *secret, size_t secret_len, const void *msg, size_t len,
                   char out[SIGN_HEX_LEN + 1]);
#define SIGN_SHA1_LEN 40
/* out receives SIGN_SHA1_LEN lowercase hex digits and a NUL (a Lua script's
 * EVALSHA name). */
void sign_sha1_hex(const void *data, size_t len, char out[SIGN_SHA1_LEN + 1]);
/* out receives SIGN_MD5_LEN lowercase hex digits and a NUL. */
void sign_md5_hex(const void *data, size_t len, char out[SIGN_MD5_LEN + 1]);
/* Constant-time equality of a computed hex digest and one received from the
 * network: false when the lengths differ (length is not secret). */
bool sign_equal(const char *want, size_t want_len, const char *got, size_t got_len);

/* Checks a channel or sign-in "auth" value ("<key>:<hex>") against the string
 * parts joined by ':' -- socket_id:channel, socket_id:channel:channel_data, or
 * for sign-in the five parts socket_id, "", "user", "", user_data (giving
 * socket_id::user::user_data).
 * Returns true when the key is app_key and the HMAC matches. */
bool sign_check_auth(const char *app_key, const char *secret, const char *auth,
                     size_t auth_len, const char *const parts[], const size_t lens[],
                     size_t nparts);

/* One decoded query parameter of a REST request. */
struct sign_param {
    const char *key;
    size_t key_len;
    const char *val;
    size_t val_len;
};

/* Appends Pusher's string to sign for a REST request to out:
 * METHOD "\n" path "\n" k=v&k=v..., keys lower-cased and sorted, auth_signature
 * left out, values as given (decoded, not re-escaped). params is not modified. */
void sign_rest_string(struct buf *out, const char *method, const char *path,
                      size_t path_len, const struct sign_param *params, size_t n);

#endif
