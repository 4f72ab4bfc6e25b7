/* test_sign.c - sign.c: Pusher's documented vectors (channel, user sign-in,
 * presence, REST and webhook), the "auth" check's accept and refuse cases, and
 * sign_rest_string against a plain reference on 2,000 random parameter sets. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "sign.h"
#include "tap.h"
#include "mn.h"

#define KEY "278d425bdf160c739803"
#define SECRET "7ad3773142a6692b25b8"
#define SOCKET "1234.1234"
#define SIG_PRIVATE "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
#define SIG_USER "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba"
#define SIG_PRESENCE "31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"
#define USER_DATA "{\"id\":\"12345\"}"
#define CHANNEL_DATA "{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Channels\"}}"
#define REST_BODY                                                                        \
    "{\"name\":\"foo\",\"channels\":[\"project-3\"],\"data\":\"{\\\"some\\\":"           \
    "\\\"data\\\"}\"}"
#define REST_MD5 "ec365a775a4cd0599faeb73354201b6f"
#define REST_STRING                                                                      \
    "POST\n/apps/3/events\nauth_key=" KEY "&auth_timestamp=1353088179"                   \
    "&auth_version=1.0&body_md5=" REST_MD5
#define REST_SIG "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
/* Recomputed with Python's hmac module for this test. */
#define WEBHOOK_BODY                                                                     \
    "{\"time_ms\":1327078148132,\"events\":[{\"name\":\"channel_occupied\","             \
    "\"channel\":\"test_channel\"}]}"
#define WEBHOOK_SIG "709fdb84c03664445f7698120b0edf0acc1ab1c8c6e93a0368c61841d6b998aa"

static const struct {
    const char *what, *msg, *want;
} hmac_cases[] = {
    {"private channel", SOCKET ":private-foobar", SIG_PRIVATE},
    {"user sign-in", SOCKET "::user::" USER_DATA, SIG_USER},
    {"presence channel", SOCKET ":presence-foobar:" CHANNEL_DATA, SIG_PRESENCE},
    {"REST request", REST_STRING, REST_SIG},
    {"webhook body", WEBHOOK_BODY, WEBHOOK_SIG},
};

/* The strings an "auth" value may sign, as the gateway hands them over. The
 * sign-in string has two empty fields: "socket::user::data". */
static const char *const private_parts[] = {SOCKET, "private-foobar"};
static const char *const other_parts[] = {SOCKET, "private-foobaz"};
static const char *const user_parts[] = {SOCKET, "", "user", "", USER_DATA};
static const char *const user_short_parts[] = {SOCKET, "", "user", USER_DATA};
static const char *const presence_parts[] = {SOCKET, "presence-foobar", CHANNEL_DATA};

static const struct auth_case {
    const char *what, *auth;
    const char *const *parts;
    size_t nparts;
    bool want;
} auth_cases[] = {
    {"private channel", KEY ":" SIG_PRIVATE, private_parts, 2, true},
    {"user sign-in", KEY ":" SIG_USER, user_parts, 5, true},
    /* joined plainly, these four give "socket::user:data", not the signed string */
    {"user sign-in with one empty field", KEY ":" SIG_USER, user_short_parts, 4, false},
    {"presence channel", KEY ":" SIG_PRESENCE, presence_parts, 3, true},
    {"signature of another channel", KEY ":" SIG_PRIVATE, other_parts, 2, false},
    {"presence auth without channel_data", KEY ":" SIG_PRESENCE, presence_parts, 2,
     false},
    {"wrong key", "278d425bdf160c739804:" SIG_PRIVATE, private_parts, 2, false},
    {"key cut short", "278d425bdf160c73980:" SIG_PRIVATE, private_parts, 2, false},
    {"key with extra byte", KEY "0:" SIG_PRIVATE, private_parts, 2, false},
    {"empty key", ":" SIG_PRIVATE, private_parts, 2, false},
    {"wrong signature",
     KEY ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a5",
     private_parts, 2, false},
    {"uppercase hex",
     KEY ":58DF8B0C36D6982B82C3ECF6B4662E34FE8C25BBA48F5369F135BF843651C3A4",
     private_parts, 2, false},
    {"one uppercase digit",
     KEY ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3A4",
     private_parts, 2, false},
    {"63 hex digits",
     KEY ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a",
     private_parts, 2, false},
    {"65 hex digits", KEY ":" SIG_PRIVATE "0", private_parts, 2, false},
    {"missing colon", KEY SIG_PRIVATE, private_parts, 2, false},
    {"signature only", SIG_PRIVATE, private_parts, 2, false},
    {"empty", "", private_parts, 2, false},
    {"trailing space", KEY ":" SIG_PRIVATE " ", private_parts, 2, false},
};

/* Key lengths around SHA-256's 64-byte block: RFC 4231 cases 2 and 6, and a
 * key of exactly one block (Python's hmac module). */
static const struct {
    const char *what;
    unsigned char key_byte; /* 0: the key is key_text */
    size_t key_len;
    const char *key_text, *msg, *want;
} key_cases[] = {
    {"RFC 4231 case 2 (short key)", 0, 4, "Jefe", "what do ya want for nothing?",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"a key of one block", 'k', 64, NULL, "exactly one block of key",
     "baa93ea4ccc7062ed6870c5e7937dbd35ad7791df4e29df9addeb429ff491acf"},
    {"RFC 4231 case 6 (131-byte key, hashed first)", 0xaa, 131, NULL,
     "Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
};

static void
test_hmac(void)
{
    char out[SIGN_HEX_LEN + 1], key[256];

    for (size_t i = 0; i < ARRAY_LEN(hmac_cases); i++) {
        sign_hmac_hex(SECRET, strlen(SECRET), hmac_cases[i].msg,
                      strlen(hmac_cases[i].msg), out);
        is_str(out, hmac_cases[i].want, "HMAC vector: %s", hmac_cases[i].what);
    }
    for (size_t i = 0; i < ARRAY_LEN(key_cases); i++) {
        if (key_cases[i].key_text)
            memcpy(key, key_cases[i].key_text, key_cases[i].key_len);
        else
            memset(key, key_cases[i].key_byte, key_cases[i].key_len);
        sign_hmac_hex(key, key_cases[i].key_len, key_cases[i].msg,
                      strlen(key_cases[i].msg), out);
        is_str(out, key_cases[i].want, "HMAC key length: %s", key_cases[i].what);
    }
}

static void
test_rest(void)
{
    /* Shuffled, mixed-case, with a signature that must not sign itself. */
    const struct sign_param params[] = {
        {"body_MD5", 8, REST_MD5, 32},
        {"Auth_Version", 12, "1.0", 3},
        {"auth_signature", 14, REST_SIG, 64},
        {"AUTH_KEY", 8, KEY, 20},
        {"auth_timestamp", 14, "1353088179", 10},
    };
    struct buf b = BUF_INIT;
    char md5[SIGN_MD5_LEN + 1], sig[SIGN_HEX_LEN + 1];

    sign_md5_hex(REST_BODY, strlen(REST_BODY), md5);
    is_str(md5, REST_MD5, "body_md5 of the documented body");
    sign_rest_string(&b, "POST", "/apps/3/events", 14, params, ARRAY_LEN(params));
    is_str(buf_data(&b), REST_STRING, "REST string to sign");
    sign_hmac_hex(SECRET, strlen(SECRET), buf_data(&b), b.len, sig);
    is_str(sig, REST_SIG, "REST signature");
    ok(strcmp(params[3].key, "AUTH_KEY") == 0 && params[0].key_len == 8,
       "params left as given");
    buf_reset(&b);
    sign_rest_string(&b, "GET", "/apps/3/channels?x", 16, NULL, 0);
    is_str(buf_data(&b), "GET\n/apps/3/channels\n", "no params: empty query line");
    buf_reset(&b);
    sign_rest_string(&b, "GET", "/p", 2, params + 2, 1);
    is_str(buf_data(&b), "GET\n/p\n", "auth_signature alone: empty query line");
    buf_free(&b);
    sign_md5_hex("", 0, md5);
    is_str(md5, "d41d8cd98f00b204e9800998ecf8427e", "MD5 of nothing");
}

static void
test_equal_and_webhook(void)
{
    char sig[SIGN_HEX_LEN + 1];
    const char tampered[] = "{\"time_ms\":1327078148133,\"events\":[]}";

    ok(sign_equal("abc", 3, "abc", 3), "equal strings are equal");
    ok(!sign_equal("abc", 3, "abd", 3), "last byte differs");
    ok(!sign_equal("abc", 3, "abcd", 4), "lengths differ");
    ok(sign_equal("", 0, "", 0), "two empty strings are equal");
    /* A webhook receiver signs the raw body and compares X-Pusher-Signature. */
    sign_hmac_hex(SECRET, strlen(SECRET), WEBHOOK_BODY, strlen(WEBHOOK_BODY), sig);
    ok(sign_equal(sig, strlen(sig), WEBHOOK_SIG, strlen(WEBHOOK_SIG)),
       "webhook signature accepted");
    sign_hmac_hex(SECRET, strlen(SECRET), tampered, strlen(tampered), sig);
    ok(!sign_equal(sig, strlen(sig), WEBHOOK_SIG, strlen(WEBHOOK_SIG)),
       "tampered webhook body refused");
}

static void
test_auth(void)
{
    for (size_t i = 0; i < ARRAY_LEN(auth_cases); i++) {
        const struct auth_case *c = &auth_cases[i];
        size_t lens[5];
        for (size_t k = 0; k < c->nparts; k++)
            lens[k] = strlen(c->parts[k]);
        is_int(sign_check_auth(KEY, SECRET, c->auth, strlen(c->auth), c->parts, lens,
                               c->nparts),
               c->want, "auth: %s", c->what);
    }
}

/* --- differential test: sign_rest_string against a plain reference --- */

#define MAX_PARAMS 12
#define MAX_FIELD 8
#define MAX_KEY 16 /* room for "auth_signature" */

struct ref_param {
    char key[MAX_KEY]; /* lower-cased copy */
    size_t key_len;
    size_t idx;
};

static uint32_t rng_state = 2463534242u;

static uint32_t
rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static int
ref_cmp(const void *a, const void *b)
{
    const struct ref_param *p = a, *q = b;
    size_t n = p->key_len < q->key_len ? p->key_len : q->key_len;
    int c = memcmp(p->key, q->key, n);

    if (c != 0)
        return c;
    if (p->key_len != q->key_len)
        return p->key_len < q->key_len ? -1 : 1;
    return p->idx < q->idx ? -1 : 1;
}

/* The obvious way: lower-case copies, qsort with the index as tie-break, drop
 * auth_signature, join. Writes a NUL-terminated string into out. */
static void
ref_rest_string(char *out, size_t cap, const char *method, const char *path,
                const struct sign_param *params, size_t n)
{
    struct ref_param refs[MAX_PARAMS];
    size_t len;
    int first = 1;

    memset(refs, 0, sizeof(refs));
    len = (size_t)snprintf(out, cap, "%s\n%s\n", method, path);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < params[i].key_len; k++)
            refs[i].key[k] = (char)tolower((unsigned char)params[i].key[k]);
        refs[i].key_len = params[i].key_len;
        refs[i].idx = i;
    }
    qsort(refs, n, sizeof(refs[0]), ref_cmp);
    for (size_t i = 0; i < n; i++) {
        const struct sign_param *p = &params[refs[i].idx];
        if (refs[i].key_len == 14 && memcmp(refs[i].key, "auth_signature", 14) == 0)
            continue;
        if (!first)
            out[len++] = '&';
        first = 0;
        memcpy(out + len, refs[i].key, refs[i].key_len);
        len += refs[i].key_len;
        out[len++] = '=';
        memcpy(out + len, p->val, p->val_len);
        len += p->val_len;
    }
    out[len] = '\0';
}

/* Keys mix case and sit around '_' and '@', which lower-casing reorders
 * ('Z' < '_' < 'z'); a short alphabet makes equal keys common. */
static void
random_field(char *s, size_t *len, int is_key)
{
    static const char key_chars[] = "aAbBzZ_@[09";
    static const char val_chars[] = "aZ=&% +\\\xc3\xa9";
    static const char *const names[] = {"auth_signature", "AUTH_Signature", "auth_key",
                                        "Auth_Key", "body_md5"};

    if (is_key && rng() % 4 == 0) {
        const char *name = names[rng() % ARRAY_LEN(names)];
        *len = strlen(name);
        memcpy(s, name, *len);
        return;
    }
    *len = rng() % (is_key ? 4 : MAX_FIELD + 1);
    for (size_t i = 0; i < *len; i++)
        s[i] = is_key ? key_chars[rng() % (sizeof(key_chars) - 1)]
                      : val_chars[rng() % (sizeof(val_chars) - 1)];
}

static void
test_differential(void)
{
    enum { ROUNDS = 2000 };
    char keys[MAX_PARAMS][MAX_KEY], vals[MAX_PARAMS][MAX_FIELD];
    char snapshot[sizeof(keys)], want[512];
    struct sign_param params[MAX_PARAMS];
    struct buf b = BUF_INIT;
    int mismatched = 0, modified = 0;

    memset(keys, 0, sizeof(keys)); /* compared whole with the snapshot */
    for (int round = 0; round < ROUNDS; round++) {
        size_t n = rng() % (MAX_PARAMS + 1);
        for (size_t i = 0; i < n; i++) {
            random_field(keys[i], &params[i].key_len, 1);
            random_field(vals[i], &params[i].val_len, 0);
            params[i].key = keys[i];
            params[i].val = vals[i];
        }
        memcpy(snapshot, keys, sizeof(keys));
        ref_rest_string(want, sizeof(want), "GET", "/apps/1/channels", params, n);
        buf_reset(&b);
        sign_rest_string(&b, "GET", "/apps/1/channels", 16, params, n);
        if (b.len != strlen(want) || memcmp(buf_data(&b), want, b.len) != 0) {
            if (mismatched++ == 0)
                printf("# round %d: got \"%s\"\n#  want \"%s\"\n", round, buf_data(&b),
                       want);
        }
        modified += memcmp(snapshot, keys, sizeof(keys)) != 0;
    }
    buf_free(&b);
    is_int(mismatched, 0, "%d random parameter sets match the reference", ROUNDS);
    is_int(modified, 0, "no parameter set modified");
}

int
main(void)
{
    plan((int)(ARRAY_LEN(hmac_cases) + ARRAY_LEN(key_cases) + 7 + 6 +
               ARRAY_LEN(auth_cases) + 2));
    test_hmac();
    test_rest();
    test_equal_and_webhook();
    test_auth();
    test_differential();
    return done_testing();
}
