/* msg.c - Pusher protocol 7 messages: encodes what the server sends (compact
 * JSON, data double-encoded as a string) and decodes what clients send, with
 * jansson. Owns the JSON shapes only: whether an event, channel or signature
 * is allowed is decided by the gateway, chan.c and sign.c. */
#include "msg.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"
#include "mem.h"
#include "mn.h"

/* Keys keep the client's order; reals print with 17 digits, which reads back
 * as the same double (JSON.parse("0.10000000000000001") === 0.1). */
#define DUMP_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER)

#define BAD 400 /* err->status for anything a client sent wrong */

/* --- encoding --- */

static void
put_key(struct buf *out, const char *key, const char *s, size_t len)
{
    buf_putc(out, ',');
    buf_json_str(out, key, strlen(key));
    buf_putc(out, ':');
    buf_json_str(out, s, len);
}

void
msg_event(struct buf *out, const char *event, size_t elen, const char *channel,
          size_t clen, const char *data, size_t dlen, const char *user_id, size_t ulen)
{
    buf_puts(out, "{\"event\":");
    buf_json_str(out, event, elen);
    if (channel != NULL)
        put_key(out, "channel", channel, clen);
    if (data != NULL)
        put_key(out, "data", data, dlen);
    if (user_id != NULL)
        put_key(out, "user_id", user_id, ulen);
    buf_putc(out, '}');
}

/* An event whose data is the inner JSON text, sent as a string. */
static void
event_with(struct buf *out, const char *event, const char *channel, size_t clen,
           const struct buf *inner)
{
    msg_event(out, event, strlen(event), channel, clen, buf_data(inner), inner->len, NULL,
              0);
}

void
msg_connection_established(struct buf *out, const char *socket_id,
                           unsigned activity_timeout)
{
    struct buf in = BUF_INIT;

    buf_puts(&in, "{\"socket_id\":");
    buf_json_str(&in, socket_id, strlen(socket_id));
    buf_printf(&in, ",\"activity_timeout\":%u}", activity_timeout);
    event_with(out, "pusher:connection_established", NULL, 0, &in);
    buf_free(&in);
}

void
msg_error(struct buf *out, int code, const char *message)
{
    struct buf in = BUF_INIT;

    if (code < 0)
        buf_puts(&in, "{\"code\":null");
    else
        buf_printf(&in, "{\"code\":%d", code);
    put_key(&in, "message", message, strlen(message));
    buf_putc(&in, '}');
    event_with(out, "pusher:error", NULL, 0, &in);
    buf_free(&in);
}

void
msg_ping(struct buf *out)
{
    buf_puts(out, "{\"event\":\"pusher:ping\",\"data\":\"{}\"}");
}

void
msg_pong(struct buf *out)
{
    buf_puts(out, "{\"event\":\"pusher:pong\",\"data\":\"{}\"}");
}

void
msg_subscription_succeeded(struct buf *out, const char *channel, size_t clen,
                           const char *presence_json, size_t plen)
{
    static const char event[] = "pusher_internal:subscription_succeeded";

    if (presence_json == NULL)
        presence_json = "{}", plen = 2;
    msg_event(out, event, sizeof(event) - 1, channel, clen, presence_json, plen, NULL, 0);
}

void
msg_subscription_error(struct buf *out, const char *channel, size_t clen,
                       const char *type, const char *error, int status)
{
    struct buf in = BUF_INIT;

    buf_puts(&in, "{\"type\":");
    buf_json_str(&in, type, strlen(type));
    put_key(&in, "error", error, strlen(error));
    buf_printf(&in, ",\"status\":%d}", status);
    event_with(out, "pusher:subscription_error", channel, clen, &in);
    buf_free(&in);
}

void
msg_member_added(struct buf *out, const char *channel, size_t clen, const char *user_id,
                 size_t ulen, const char *info_json, size_t ilen)
{
    struct buf in = BUF_INIT;

    buf_puts(&in, "{\"user_id\":");
    buf_json_str(&in, user_id, ulen);
    buf_puts(&in, ",\"user_info\":");
    if (info_json != NULL)
        buf_append(&in, info_json, ilen);
    else
        buf_puts(&in, "null");
    buf_putc(&in, '}');
    event_with(out, "pusher_internal:member_added", channel, clen, &in);
    buf_free(&in);
}

void
msg_member_removed(struct buf *out, const char *channel, size_t clen, const char *user_id,
                   size_t ulen)
{
    struct buf in = BUF_INIT;

    buf_puts(&in, "{\"user_id\":");
    buf_json_str(&in, user_id, ulen);
    buf_putc(&in, '}');
    event_with(out, "pusher_internal:member_removed", channel, clen, &in);
    buf_free(&in);
}

void
msg_presence_object(struct buf *out, const char *const *ids, const size_t *id_lens,
                    const char *const *infos, const size_t *info_lens, size_t count)
{
    size_t i;

    buf_puts(out, "{\"presence\":{\"ids\":[");
    for (i = 0; i < count; i++) {
        if (i > 0)
            buf_putc(out, ',');
        buf_json_str(out, ids[i], id_lens[i]);
    }
    buf_puts(out, "],\"hash\":{");
    for (i = 0; i < count; i++) {
        if (i > 0)
            buf_putc(out, ',');
        buf_json_str(out, ids[i], id_lens[i]);
        buf_putc(out, ':');
        if (infos[i] != NULL)
            buf_append(out, infos[i], info_lens[i]);
        else
            buf_puts(out, "null");
    }
    buf_printf(out, "},\"count\":%zu}}", count);
}

void
msg_signin_success(struct buf *out, const char *user_data, size_t len)
{
    struct buf in = BUF_INIT;

    buf_puts(&in, "{\"user_data\":");
    buf_json_str(&in, user_data, len);
    buf_putc(&in, '}');
    event_with(out, "pusher:signin_success", NULL, 0, &in);
    buf_free(&in);
}

void
msg_subscription_count(struct buf *out, const char *channel, size_t clen, unsigned count)
{
    struct buf in = BUF_INIT;

    buf_printf(&in, "{\"subscription_count\":%u}", count);
    event_with(out, "pusher_internal:subscription_count", channel, clen, &in);
    buf_free(&in);
}

/* Appends one {"name":..,"user_ids":[..]} element (none when n is 0), after a
 * comma when *first is false. */
static void
watchlist_group(struct buf *in, bool *first, const char *name, const char *const *ids,
                const size_t *lens, size_t n)
{
    if (n == 0)
        return;
    if (!*first)
        buf_putc(in, ',');
    *first = false;
    buf_printf(in, "{\"name\":\"%s\",\"user_ids\":[", name);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            buf_putc(in, ',');
        buf_json_str(in, ids[i], lens[i]);
    }
    buf_puts(in, "]}");
}

void
msg_watchlist_events(struct buf *out, const char *const *online, const size_t *on_lens,
                     size_t non, const char *const *offline, const size_t *off_lens,
                     size_t noff)
{
    struct buf in = BUF_INIT;
    bool first = true;

    buf_puts(&in, "{\"events\":[");
    watchlist_group(&in, &first, "online", online, on_lens, non);
    watchlist_group(&in, &first, "offline", offline, off_lens, noff);
    buf_puts(&in, "]}");
    event_with(out, "pusher_internal:watchlist_events", NULL, 0, &in);
    buf_free(&in);
}

/* --- decoding --- */

/* Whether arrays and objects nest deeper than MSG_MAX_DEPTH. Counted on the
 * raw text, skipping strings, so jansson's recursive parser never sees a deep
 * document; malformed text is left for jansson to refuse. */
static bool
too_deep(const char *s, size_t len)
{
    bool in_str = false;
    size_t i, depth = 0;

    for (i = 0; i < len; i++) {
        char c = s[i];

        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > MSG_MAX_DEPTH)
                return true;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return false;
}

/* Parses one complete JSON value of any type; what names it in errors. */
static json_t *
load(const char *text, size_t len, const char *what, struct mn_err *err)
{
    json_error_t jerr;
    json_t *root;

    if (too_deep(text, len)) {
        mn_err_set(err, BAD, "JSON in %s nested deeper than %d levels", what,
                   MSG_MAX_DEPTH);
        return NULL;
    }
    root = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
    if (root == NULL)
        mn_err_set(err, BAD, "Invalid JSON in %s: %s", what, jerr.text);
    return root;
}

/* Compact text of v, NUL-terminated; the caller frees it. */
static char *
dump(const json_t *v, size_t *len)
{
    size_t n = json_dumpb(v, NULL, 0, DUMP_FLAGS);
    char *s;

    if (n == 0) { /* only out of memory: die like xmalloc does */
        log_err("msg: jansson out of memory while serialising");
        abort();
    }
    s = xmalloc(n + 1);
    if (json_dumpb(v, s, n, DUMP_FLAGS) != n)
        abort(); /* same value, same size: our bug */
    s[n] = '\0';
    if (len != NULL)
        *len = n;
    return s;
}

/* Copies the string obj[key] into *dst; absent or null leaves *dst alone. */
static int
get_str(const json_t *obj, const char *key, char **dst, struct mn_err *err)
{
    const json_t *v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return mn_err_set(err, BAD, "\"%s\" must be a string", key);
    free(*dst);
    *dst = xstrndup(json_string_value(v), json_string_length(v));
    return 0;
}

/* data of a pusher:* event: an object, or a string holding one. */
static int
pusher_data(const json_t *data, struct msg_in *m, struct mn_err *err)
{
    json_t *own = NULL;
    const json_t *cd;
    int rc = -1;

    if (data == NULL || json_is_null(data))
        return 0;
    if (json_is_string(data)) {
        own = load(json_string_value(data), json_string_length(data), "data", err);
        if (own == NULL)
            return -1;
        data = own;
    }
    if (!json_is_object(data)) {
        mn_err_set(err, BAD, "data of %s must be a JSON object", m->event);
        goto fail;
    }
    if (get_str(data, "channel", &m->channel, err) < 0 ||
        get_str(data, "auth", &m->auth, err) < 0 ||
        get_str(data, "user_data", &m->user_data, err) < 0)
        goto fail;
    cd = json_object_get(data, "channel_data");
    if (json_is_object(cd))
        m->channel_data = dump(cd, NULL);
    else if (get_str(data, "channel_data", &m->channel_data, err) < 0)
        goto fail;
    rc = 0;
fail:
    json_decref(own);
    return rc;
}

/* data of a client event: a string's content as is, anything else compact. */
static void
client_data(const json_t *data, struct msg_in *m)
{
    if (data == NULL)
        return;
    if (json_is_string(data)) {
        m->data_len = json_string_length(data);
        m->data = xstrndup(json_string_value(data), m->data_len);
    } else {
        m->data = dump(data, &m->data_len);
    }
}

int
msg_parse(const char *text, size_t len, struct msg_in *out, struct mn_err *err)
{
    json_t *root;
    const json_t *ev;

    *out = (struct msg_in){0};
    root = load(text, len, "message", err);
    if (root == NULL)
        return -1;
    if (!json_is_object(root)) {
        mn_err_set(err, BAD, "Message must be a JSON object");
        goto fail;
    }
    ev = json_object_get(root, "event");
    if (ev == NULL || json_is_null(ev)) {
        mn_err_set(err, BAD, "Event name missing");
        goto fail;
    }
    if (!json_is_string(ev) || json_string_length(ev) == 0) {
        mn_err_set(err, BAD, "Event name must be a non-empty string");
        goto fail;
    }
    out->event = xstrndup(json_string_value(ev), json_string_length(ev));
    if (get_str(root, "channel", &out->channel, err) < 0)
        goto fail;
    if (strncmp(out->event, "pusher:", 7) == 0) {
        if (pusher_data(json_object_get(root, "data"), out, err) < 0)
            goto fail;
    } else {
        client_data(json_object_get(root, "data"), out);
    }
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    msg_in_free(out);
    return -1;
}

void
msg_in_free(struct msg_in *m)
{
    if (m == NULL)
        return;
    free(m->event);
    free(m->channel);
    free(m->data);
    free(m->auth);
    free(m->channel_data);
    free(m->user_data);
    *m = (struct msg_in){0};
}

/* UTF-8 code points in s (valid UTF-8: jansson checked it). */
static size_t
utf8_chars(const char *s, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* The member id: a non-empty string or an integer, as text. */
static int
member_id(const json_t *obj, const char *id_key, size_t max_id_len,
          struct msg_member *out, struct mn_err *err)
{
    const json_t *id = json_object_get(obj, id_key);

    if (id == NULL || json_is_null(id))
        return mn_err_set(err, BAD, "\"%s\" missing", id_key);
    if (json_is_integer(id)) {
        char num[32]; /* 20 digits and a sign at most */

        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(id));
        out->user_id = xstrdup(num);
        return 0;
    }
    if (!json_is_string(id))
        return mn_err_set(err, BAD, "\"%s\" must be a string or an integer", id_key);
    if (json_string_length(id) == 0)
        return mn_err_set(err, BAD, "\"%s\" is empty", id_key);
    if (utf8_chars(json_string_value(id), json_string_length(id)) > max_id_len)
        return mn_err_set(err, BAD, "\"%s\" longer than %zu characters", id_key,
                          max_id_len);
    out->user_id = xstrndup(json_string_value(id), json_string_length(id));
    return 0;
}

int
msg_parse_member(const char *text, size_t len, const char *id_key, size_t max_id_len,
                 size_t max_info, struct msg_member *out, struct mn_err *err)
{
    json_t *root;
    const json_t *info;
    size_t n;

    *out = (struct msg_member){0};
    root = load(text, len, strcmp(id_key, "id") == 0 ? "user_data" : "channel_data", err);
    if (root == NULL)
        return -1;
    if (!json_is_object(root)) {
        mn_err_set(err, BAD, "Member data must be a JSON object");
        goto fail;
    }
    if (member_id(root, id_key, max_id_len, out, err) < 0)
        goto fail;
    info = json_object_get(root, "user_info");
    if (info == NULL)
        info = json_null();
    n = json_dumpb(info, NULL, 0, DUMP_FLAGS);
    if (n > max_info) {
        mn_err_set(err, BAD, "\"user_info\" larger than %zu bytes", max_info);
        goto fail;
    }
    out->user_info = dump(info, &out->info_len);
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    msg_member_free(out);
    return -1;
}

void
msg_member_free(struct msg_member *m)
{
    if (m == NULL)
        return;
    free(m->user_id);
    free(m->user_info);
    *m = (struct msg_member){0};
}

int
msg_member_event_parse(const char *text, size_t len, bool *added, struct msg_member *out)
{
    static const char head[] = "{\"event\":\"pusher_internal:member_";
    json_t *root = NULL, *inner = NULL;
    const json_t *ev, *data, *id, *info;
    int rc = -1;

    *out = (struct msg_member){0};
    if (len < sizeof(head) - 1 || memcmp(text, head, sizeof(head) - 1) != 0)
        return 0;
    if (too_deep(text, len) ||
        (root = json_loadb(text, len, JSON_DECODE_ANY, NULL)) == NULL ||
        !json_is_string(ev = json_object_get(root, "event")) ||
        !json_is_string(data = json_object_get(root, "data")))
        goto out;
    if (strcmp(json_string_value(ev), "pusher_internal:member_added") == 0)
        *added = true;
    else if (strcmp(json_string_value(ev), "pusher_internal:member_removed") == 0)
        *added = false;
    else
        goto out;
    if (too_deep(json_string_value(data), json_string_length(data)) ||
        (inner = json_loadb(json_string_value(data), json_string_length(data), 0,
                            NULL)) == NULL ||
        !json_is_string(id = json_object_get(inner, "user_id")))
        goto out;
    out->user_id = xstrndup(json_string_value(id), json_string_length(id));
    if (*added) {
        info = json_object_get(inner, "user_info");
        if (info == NULL)
            out->user_info = xstrndup("null", out->info_len = 4);
        else
            out->user_info = dump(info, &out->info_len);
    }
    rc = 1;
out:
    json_decref(inner);
    json_decref(root);
    return rc;
}

int
msg_parse_watchlist(const char *text, size_t len, size_t max_ids, size_t max_id_len,
                    struct msg_watchlist *out, struct mn_err *err)
{
    json_t *root;
    const json_t *list, *v;
    size_t i;

    *out = (struct msg_watchlist){0};
    root = load(text, len, "user_data", err);
    if (root == NULL)
        return -1;
    list = json_is_object(root) ? json_object_get(root, "watchlist") : NULL;
    if (list == NULL || json_is_null(list)) {
        json_decref(root);
        return 0;
    }
    if (!json_is_array(list)) {
        mn_err_set(err, BAD, "\"watchlist\" must be an array of user ids");
        goto fail;
    }
    out->total = json_array_size(list);
    out->ids = xcalloc(out->total < max_ids ? out->total : max_ids, sizeof(*out->ids));
    json_array_foreach(list, i, v)
    {
        struct msg_member m = {0};
        json_t *wrap;
        int rc;

        if (i == max_ids)
            break;
        /* An entry follows the rules of a user id: reuse member_id on {"id":v}. */
        wrap = json_pack("{sO}", "id", v);
        rc = member_id(wrap, "id", max_id_len, &m, err);
        json_decref(wrap);
        if (rc < 0) {
            mn_err_set(err, BAD,
                       "\"watchlist\" entry %zu must be a non-empty user id of "
                       "at most %zu characters",
                       i, max_id_len);
            goto fail;
        }
        out->ids[out->n++] = m.user_id;
    }
    json_decref(root);
    return 0;
fail:
    json_decref(root);
    msg_watchlist_free(out);
    return -1;
}

void
msg_watchlist_free(struct msg_watchlist *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n; i++)
        free(w->ids[i]);
    free(w->ids);
    *w = (struct msg_watchlist){0};
}
