/* test_chan.c - chan.c: channel kinds by prefix, name length and charset,
 * the reserved "#server-to-user-" prefix, cache prefixes, event names and
 * socket ids. Inputs are (ptr, len): some cases are not NUL-terminated. */
#include <stdio.h>
#include <string.h>

#include "chan.h"
#include "tap.h"
#include "mn.h"

static const struct kind_case {
    const char *name;
    enum chan_kind want;
} kind_cases[] = {
    {"my-channel", CHAN_PUBLIC},
    {"A-Za-z0-9_-=@,.;", CHAN_PUBLIC},
    {"cache-prices", CHAN_PUBLIC},
    {"Private-orders", CHAN_PUBLIC}, /* prefixes are case-sensitive */
    {"server-to-user-42", CHAN_PUBLIC},
    {"private-orders", CHAN_PRIVATE},
    {"private-cache-orders", CHAN_PRIVATE},
    {"private-encrypted-orders", CHAN_ENCRYPTED},
    {"private-encrypted-cache-orders", CHAN_ENCRYPTED},
    {"presence-room", CHAN_PRESENCE},
    {"presence-cache-room", CHAN_PRESENCE},
    {"#server-to-user-42", CHAN_USER},
    {"#server-to-user-user@example.com", CHAN_USER},
    {"#server-to-user-", CHAN_INVALID},
    {"#server-to-user", CHAN_INVALID},
    {"#server-to-user-4#2", CHAN_INVALID},
    {"#server-to-user-a b", CHAN_INVALID},
    {"#private-orders", CHAN_INVALID},
    {"private-#orders", CHAN_INVALID},
    {"", CHAN_INVALID},
    {"a b", CHAN_INVALID},
    {"a#b", CHAN_INVALID},
    {"a/b", CHAN_INVALID},
    {"a!b", CHAN_INVALID},
    {"private-a b", CHAN_INVALID},
    {"caf\xc3\xa9", CHAN_INVALID},
    {"a\\b", CHAN_INVALID},
    {"a:b", CHAN_INVALID},
    {"a\nb", CHAN_INVALID},
};

static const struct bool_case {
    const char *s;
    bool want;
} cache_cases[] =
    {
        {"cache-prices", true},
        {"private-cache-orders", true},
        {"private-encrypted-cache-orders", true},
        {"presence-cache-room", true},
        {"cache", false},
        {"cache_prices", false},
        {"Cache-prices", false},
        {"x-cache-prices", false},
        {"private-orders", false},
        {"private-encrypted-orders", false},
        {"presence-cacheroom", false},
        {"", false},
},
  event_cases[] =
      {
          {"my-event", true},
          {"client-typing", true},
          {"App\\Events\\Foo", true},
          {"pusher:subscribe", true},
          {"with space", true},
          {"\xc3\xbcn\xc3\xaf"
           "code",
           true},
          {"", false},
          {"\n", false},
          {"a\tb", false},
          {"a\x7f", false},
          {"a\x1f", false},
},
  client_cases[] =
      {
          {"client-typing", true}, {"client-", true},           {"Client-typing", false},
          {"client", false},       {"pusher:subscribe", false}, {"", false},
},
  socket_cases[] = {
      {"1.1", true},   {"123456.7890123", true}, {"0.0", true},    {"1.1\n", false},
      {"../1", false}, {"1.1 ", false},          {" 1.1", false},  {".1", false},
      {"1.", false},   {"a.b", false},           {"1", false},     {".", false},
      {"", false},     {"1..1", false},          {"1.1.1", false}, {"-1.1", false},
      {"+1.1", false}, {"1,1", false},
};

static const struct auth_case {
    enum chan_kind kind;
    bool want;
} auth_cases[] = {
    {CHAN_INVALID, false},  {CHAN_PUBLIC, false},  {CHAN_PRIVATE, true},
    {CHAN_ENCRYPTED, true}, {CHAN_PRESENCE, true}, {CHAN_USER, false},
};

/* s with control and non-ASCII bytes as \xNN, so TAP lines stay one line.
 * Returns a static buffer: one use per printf. */
static const char *
shown(const char *s)
{
    static char out[256];
    size_t n = 0;

    for (; *s != '\0' && n + 5 < sizeof(out); s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x7f)
            n += (size_t)snprintf(out + n, sizeof(out) - n, "\\x%02x", c);
        else
            out[n++] = (char)c;
    }
    out[n] = '\0';
    return out;
}

/* prefix followed by 'x' up to total bytes, NUL-terminated, in out. */
static const char *
long_name(char *out, const char *prefix, size_t total)
{
    size_t plen = strlen(prefix);

    memcpy(out, prefix, plen);
    memset(out + plen, 'x', total - plen);
    out[total] = '\0';
    return out;
}

static void
test_kinds(void)
{
    char name[CHAN_NAME_MAX + 2];
    static const struct {
        const char *prefix;
        size_t len;
        enum chan_kind want;
    } long_cases[] = {
        {"", CHAN_NAME_MAX, CHAN_PUBLIC},
        {"", CHAN_NAME_MAX + 1, CHAN_INVALID},
        {"private-encrypted-", CHAN_NAME_MAX, CHAN_ENCRYPTED},
        {"presence-", CHAN_NAME_MAX + 1, CHAN_INVALID},
        {CHAN_USER_PREFIX, CHAN_NAME_MAX, CHAN_USER},
        {CHAN_USER_PREFIX, CHAN_NAME_MAX + 1, CHAN_INVALID},
    };

    for (size_t i = 0; i < ARRAY_LEN(kind_cases); i++)
        is_int(chan_kind_of(kind_cases[i].name, strlen(kind_cases[i].name)),
               kind_cases[i].want, "kind of \"%s\"", shown(kind_cases[i].name));
    for (size_t i = 0; i < ARRAY_LEN(long_cases); i++)
        is_int(chan_kind_of(long_name(name, long_cases[i].prefix, long_cases[i].len),
                            long_cases[i].len),
               long_cases[i].want, "kind of %zu-byte \"%s...\"", long_cases[i].len,
               long_cases[i].prefix);
    /* Only len bytes count: what follows them is not part of the name. */
    is_int(chan_kind_of("private-orders#", 14), CHAN_PRIVATE, "bytes after len ignored");
    is_int(chan_kind_of("a\0b", 3), CHAN_INVALID, "embedded NUL refused");
    is_int(chan_kind_of("#server-to-user-", 15), CHAN_INVALID, "cut user prefix refused");
}

static void
test_bools(const char *what, bool (*fn)(const char *, size_t),
           const struct bool_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        is_int(fn(cases[i].s, strlen(cases[i].s)), cases[i].want, "%s \"%s\"", what,
               shown(cases[i].s));
}

static void
test_events(void)
{
    char name[CHAN_EVENT_MAX + 2];

    memset(name, 'e', sizeof(name));
    ok(chan_event_name_ok(name, CHAN_EVENT_MAX), "200-byte event name accepted");
    ok(!chan_event_name_ok(name, CHAN_EVENT_MAX + 1), "201-byte event name refused");
    ok(!chan_event_name_ok("a\0b", 3), "event name with NUL refused");
}

static void
test_socket_ids(void)
{
    char id[CHAN_SOCKET_ID_MAX + 2];

    /* 32 digits, '.', then digits up to the length wanted. */
    memset(id, '7', sizeof(id));
    id[32] = '.';
    ok(chan_socket_id_ok(id, CHAN_SOCKET_ID_MAX), "64-byte socket_id accepted");
    ok(!chan_socket_id_ok(id, CHAN_SOCKET_ID_MAX + 1), "65-byte socket_id refused");
    ok(chan_socket_id_ok("1.1x", 3), "bytes after len ignored");
    ok(!chan_socket_id_ok("1.\0"
                          "1",
                          4),
       "socket_id with NUL refused");
}

int
main(void)
{
    plan((int)(ARRAY_LEN(kind_cases) + 6 + 3 + ARRAY_LEN(cache_cases) +
               ARRAY_LEN(event_cases) + 3 + ARRAY_LEN(client_cases) +
               ARRAY_LEN(socket_cases) + 4 + ARRAY_LEN(auth_cases)));
    test_kinds();
    test_bools("cache", chan_is_cache, cache_cases, ARRAY_LEN(cache_cases));
    test_bools("event name", chan_event_name_ok, event_cases, ARRAY_LEN(event_cases));
    test_events();
    test_bools("client event", chan_is_client_event, client_cases,
               ARRAY_LEN(client_cases));
    test_bools("socket_id", chan_socket_id_ok, socket_cases, ARRAY_LEN(socket_cases));
    test_socket_ids();
    for (size_t i = 0; i < ARRAY_LEN(auth_cases); i++)
        is_int(chan_kind_needs_auth(auth_cases[i].kind), auth_cases[i].want,
               "kind %d needs auth: %d", (int)auth_cases[i].kind, auth_cases[i].want);
    return done_testing();
}
