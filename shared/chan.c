/* chan.c - Pusher names: channel kind from its prefix, the length and charset
 * rules for channel names, event names and socket ids. Pure: no I/O, no
 * allocation, input is (ptr, len) and never assumed NUL-terminated. Does not
 * decide who may subscribe: signatures are in sign.c, policy in the gateway. */
#include "chan.h"

#include <string.h>

#include "mn.h"

/* A literal prefix and its length without the NUL. */
#define PREFIX(s)                                                                        \
    {                                                                                    \
        s, sizeof(s) - 1                                                                 \
    }

struct prefix {
    const char *str;
    size_t len;
};

/* Longest first where one prefix starts another: "private-encrypted-" must be
 * seen before "private-". */
static const struct {
    struct prefix p;
    enum chan_kind kind;
} kinds[] = {
    {PREFIX("private-encrypted-"), CHAN_ENCRYPTED},
    {PREFIX("private-"), CHAN_PRIVATE},
    {PREFIX("presence-"), CHAN_PRESENCE},
};

static const struct prefix caches[] = {
    PREFIX("cache-"),
    PREFIX("private-cache-"),
    PREFIX("private-encrypted-cache-"),
    PREFIX("presence-cache-"),
};

static bool
has_prefix(const char *s, size_t len, const struct prefix *p)
{
    return len >= p->len && memcmp(s, p->str, p->len) == 0;
}

/* [A-Za-z0-9_\-=@,.;] spelled out rather than with <ctype.h>, whose answers
 * depend on the locale. */
static bool
name_char_ok(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    switch (c) {
    case '_':
    case '-':
    case '=':
    case '@':
    case ',':
    case '.':
    case ';':
        return true;
    default:
        return false;
    }
}

static bool
all_name_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!name_char_ok((unsigned char)s[i]))
            return false;
    return true;
}

enum chan_kind
chan_kind_of(const char *name, size_t len)
{
    static const struct prefix user = PREFIX(CHAN_USER_PREFIX);

    if (len == 0 || len > CHAN_NAME_MAX)
        return CHAN_INVALID;
    if (has_prefix(name, len, &user)) {
        /* '#' is Pusher's: only this prefix, and only with an id after it. */
        if (len == user.len || !all_name_chars(name + user.len, len - user.len))
            return CHAN_INVALID;
        return CHAN_USER;
    }
    if (!all_name_chars(name, len))
        return CHAN_INVALID;
    for (size_t i = 0; i < ARRAY_LEN(kinds); i++)
        if (has_prefix(name, len, &kinds[i].p))
            return kinds[i].kind;
    return CHAN_PUBLIC;
}

bool
chan_is_cache(const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(caches); i++)
        if (has_prefix(name, len, &caches[i]))
            return true;
    return false;
}

bool
chan_kind_needs_auth(enum chan_kind kind)
{
    /* CHAN_USER is not signed per channel: the gateway checks the socket's
     * signed-in user id instead. */
    return kind == CHAN_PRIVATE || kind == CHAN_ENCRYPTED || kind == CHAN_PRESENCE;
}

bool
chan_event_name_ok(const char *name, size_t len)
{
    if (len == 0 || len > CHAN_EVENT_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

bool
chan_is_client_event(const char *name, size_t len)
{
    static const struct prefix client = PREFIX("client-");

    return has_prefix(name, len, &client);
}

/* Length of the run of ASCII digits at s (isdigit() would follow the locale). */
static size_t
digits(const char *s, size_t len)
{
    size_t n = 0;

    while (n < len && s[n] >= '0' && s[n] <= '9')
        n++;
    return n;
}

bool
chan_socket_id_ok(const char *s, size_t len)
{
    size_t left, right;

    if (len == 0 || len > CHAN_SOCKET_ID_MAX)
        return false;
    left = digits(s, len);
    if (left == 0 || left == len || s[left] != '.')
        return false;
    right = digits(s + left + 1, len - left - 1);
    return right > 0 && left + 1 + right == len;
}
