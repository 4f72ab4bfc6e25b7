/* webhook_msg.c - Pusher webhooks as bytes (PROTOCOL.md section 13): event
 * objects, the body, URLs, the HTTP/1.1 request and the answer's status line.
 * JSON is written with buf_json_str, as msg.c writes the protocol's frames.
 * Does not send, sign or time anything (gateway/webhook.c does). */
#include "webhook_msg.h"

#include <string.h>
#include <strings.h>

#include "mn.h"

static const char *const names[WEBHOOK_KIND_COUNT] = {
    "channel_occupied", "channel_vacated", "member_added",       "member_removed",
    "client_event",     "cache_miss",      "subscription_count",
};

const char *
webhook_kind_name(enum webhook_kind kind)
{
    return (unsigned)kind < WEBHOOK_KIND_COUNT ? names[kind] : NULL;
}

int
webhook_kind_parse(const char *name, size_t len)
{
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
            return (int)i;
    return -1;
}

static void
put_str(struct buf *out, const char *key, const char *s, size_t len)
{
    buf_printf(out, ",\"%s\":", key);
    buf_json_str(out, s, len);
}

void
webhook_msg_event(struct buf *out, const struct webhook_event *ev)
{
    const char *name = webhook_kind_name(ev->kind);

    buf_puts(out, "{\"name\":");
    buf_json_str(out, name, strlen(name));
    put_str(out, "channel", ev->channel, ev->clen);
    switch (ev->kind) {
    case WEBHOOK_MEMBER_ADDED:
    case WEBHOOK_MEMBER_REMOVED:
        put_str(out, "user_id", ev->user_id, ev->ulen);
        break;
    case WEBHOOK_CLIENT_EVENT:
        put_str(out, "event", ev->event, ev->elen);
        put_str(out, "data", ev->data ? ev->data : "", ev->data ? ev->dlen : 0);
        put_str(out, "socket_id", ev->socket_id, strlen(ev->socket_id));
        if (ev->user_id != NULL)
            put_str(out, "user_id", ev->user_id, ev->ulen);
        break;
    case WEBHOOK_SUBSCRIPTION_COUNT:
        buf_printf(out, ",\"subscription_count\":%u", ev->count);
        break;
    default:
        break;
    }
    buf_putc(out, '}');
}

void
webhook_msg_body(struct buf *out, uint64_t time_ms, const char *events, size_t len)
{
    buf_printf(out, "{\"time_ms\":%llu,\"events\":[", (unsigned long long)time_ms);
    buf_append(out, events, len);
    buf_puts(out, "]}");
}

static bool
plain_byte(unsigned char c)
{
    return c > ' ' && c < 0x7f;
}

/* Host and optional port of an authority; out->host/port filled. */
static const char *
parse_authority(const char *s, size_t len, struct webhook_url *out)
{
    const char *port = NULL;
    unsigned long n = 0;

    if (len == 0)
        return "must name a host (http://host[:port]/path)";
    if (memchr(s, '@', len) != NULL)
        return "must not carry a user name or password";
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL || close == s + 1)
            return "has an IPv6 host without its closing ']'";
        out->host_len = (size_t)(close - s) + 1;
        if (out->host_len < len && s[out->host_len] != ':')
            return "has something after the IPv6 host that is not \":port\"";
        if (out->host_len < len)
            port = s + out->host_len + 1;
    } else {
        const char *colon = memchr(s, ':', len);
        out->host_len = colon ? (size_t)(colon - s) : len;
        port = colon ? colon + 1 : NULL;
        if (out->host_len == 0)
            return "must name a host (http://host[:port]/path)";
    }
    out->host = s;
    if (port == NULL)
        return NULL;
    if (port == s + len || s + len - port > 5)
        return "must have a port of 1 to 65535 after ':'";
    for (const char *p = port; p < s + len; p++) {
        if (*p < '0' || *p > '9')
            return "must have a port of 1 to 65535 after ':'";
        n = n * 10 + (unsigned long)(*p - '0');
    }
    if (n < 1 || n > 65535)
        return "must have a port of 1 to 65535 after ':'";
    out->port = (unsigned)n;
    return NULL;
}

const char *
webhook_url_parse(const char *s, size_t len, struct webhook_url *out)
{
    const char *auth, *slash;
    size_t alen;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < len; i++)
        if (!plain_byte((unsigned char)s[i]))
            return "must not contain whitespace, control or non-ASCII characters";
    if (len >= 7 && strncasecmp(s, "http://", 7) == 0) {
        auth = s + 7;
        out->port = 80;
    } else if (len >= 8 && strncasecmp(s, "https://", 8) == 0) {
        auth = s + 8;
        out->tls = true;
        out->port = 443;
    } else {
        return "must start with http:// or https://";
    }
    if (memchr(s, '#', len) != NULL)
        return "must not have a fragment ('#')";
    slash = memchr(auth, '/', (size_t)(s + len - auth));
    if (slash == NULL)
        slash = memchr(auth, '?', (size_t)(s + len - auth));
    alen = slash ? (size_t)(slash - auth) : (size_t)(s + len - auth);
    if ((auth = parse_authority(auth, alen, out)) != NULL)
        return auth;
    out->path = slash ? slash : "/";
    out->path_len = slash ? (size_t)(s + len - slash) : 1;
    return NULL;
}

void
webhook_msg_request(struct buf *out, const struct webhook_url *u, const char *key,
                    const char *signature, const char *body, size_t len)
{
    buf_puts(out, "POST ");
    if (u->path[0] == '?')
        buf_putc(out, '/');
    buf_append(out, u->path, u->path_len);
    buf_puts(out, " HTTP/1.1\r\nHost: ");
    buf_append(out, u->host, u->host_len);
    if (u->port != (u->tls ? 443u : 80u))
        buf_printf(out, ":%u", u->port);
    buf_printf(out,
               "\r\nUser-Agent: MicroNotifier\r\nContent-Type: application/json\r\n"
               "X-Pusher-Key: %s\r\nX-Pusher-Signature: %s\r\nContent-Length: %zu\r\n"
               "Connection: close\r\n\r\n",
               key, signature, len);
    buf_append(out, body, len);
}

int
webhook_msg_status(const char *in, size_t len, int *status)
{
    const char *eol = memmem(in, len, "\r\n", 2);
    size_t n = eol ? (size_t)(eol - in) : len;

    *status = 0;
    if (memcmp(in, "HTTP/1.", n < 7 ? n : 7) != 0)
        return -1;
    if (eol == NULL)
        return 0;
    /* "HTTP/1.x 200 ..." or "HTTP/1.x 200" */
    if (n < 12 || in[8] != ' ' || (n > 12 && in[12] != ' '))
        return -1;
    for (size_t i = 9; i < 12; i++)
        if (in[i] < '0' || in[i] > '9')
            return -1;
    *status = (in[9] - '0') * 100 + (in[10] - '0') * 10 + (in[11] - '0');
    /* the status line's own \r\n may start the blank line's \r\n\r\n */
    return memmem(eol, (size_t)(in + len - eol), "\r\n\r\n", 4) != NULL ? 1 : 0;
}
