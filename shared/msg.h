/* msg.h - Pusher protocol 7 messages: encoding what the server sends (JSON
 * text, data double-encoded as a string) and decoding what clients send.
 * Only this file and config.c touch jansson. */
#ifndef MN_MSG_H
#define MN_MSG_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

/* --- encoding: each appends one complete message to out --- */

/* {"event":E[,"channel":C][,"data":"<data as JSON string>"][,"user_id":U]};
 * channel, data and user_id may be NULL (omitted: pusher:cache_miss has no
 * data). data is sent as a JSON string holding its bytes as they are. */
void msg_event(struct buf *out, const char *event, size_t elen, const char *channel,
               size_t clen, const char *data, size_t dlen, const char *user_id,
               size_t ulen);
void msg_connection_established(struct buf *out, const char *socket_id,
                                unsigned activity_timeout);
/* pusher:error {"code":code,"message":message}; code < 0 is sent as null. */
void msg_error(struct buf *out, int code, const char *message);
void msg_ping(struct buf *out);
void msg_pong(struct buf *out);
/* pusher_internal:subscription_succeeded; presence_json is the (not yet
 * string-encoded) object from msg_presence_object for presence channels, NULL
 * otherwise (data "{}"). */
void msg_subscription_succeeded(struct buf *out, const char *channel, size_t clen,
                                const char *presence_json, size_t plen);
/* pusher:subscription_error {"type":type,"error":error,"status":status} */
void msg_subscription_error(struct buf *out, const char *channel, size_t clen,
                            const char *type, const char *error, int status);
/* pusher_internal:member_added {"user_id":U,"user_info":<info JSON>}; info_json
 * is trusted compact JSON text (from msg_parse_member), NULL sends null. */
void msg_member_added(struct buf *out, const char *channel, size_t clen,
                      const char *user_id, size_t ulen, const char *info_json,
                      size_t ilen);
void msg_member_removed(struct buf *out, const char *channel, size_t clen,
                        const char *user_id, size_t ulen);

/* Appends the presence object {"presence":{"ids":[..],"hash":{id:info},"count":N}}
 * as JSON text (not yet string-encoded: pass it to msg_subscription_succeeded).
 * infos[i] is the member's compact user_info JSON text, trusted as is; NULL is
 * sent as null. Ids must be distinct (one entry per user). */
void msg_presence_object(struct buf *out, const char *const *ids, const size_t *id_lens,
                         const char *const *infos, const size_t *info_lens, size_t count);

/* pusher:signin_success {"user_data":"<user_data>"}: user_data is the text the
 * client signed, sent back as a JSON string. */
void msg_signin_success(struct buf *out, const char *user_data, size_t len);
/* pusher_internal:subscription_count {"subscription_count":N} on channel. */
void msg_subscription_count(struct buf *out, const char *channel, size_t clen,
                            unsigned count);
/* pusher_internal:watchlist_events (no channel):
 * {"events":[{"name":"online","user_ids":[..]},{"name":"offline","user_ids":[..]}]};
 * a group with no ids is left out. */
void msg_watchlist_events(struct buf *out, const char *const *online,
                          const size_t *on_lens, size_t non, const char *const *offline,
                          const size_t *off_lens, size_t noff);

/* --- decoding --- */

/* Deepest nesting of arrays and objects accepted in client JSON, the envelope
 * counting as one level. Checked on the raw text before jansson parses it. */
#define MSG_MAX_DEPTH 32

/* A client message, all strings owned (NUL-terminated copies), NULL when absent
 * (JSON null counts as absent). Strings never hold a NUL: "\u0000" is refused. */
struct msg_in {
    char *event;
    char *channel; /* top-level "channel" (client events) or data.channel */
    char *data;    /* not pusher:*: data string's content, other values
                      re-serialised compactly; NULL for pusher:* events */
    size_t data_len;
    char *auth;         /* pusher:subscribe / pusher:signin */
    char *channel_data; /* pusher:subscribe on presence */
    char *user_data;    /* pusher:signin */
};

/* Parses one text frame (text, len), not NUL-terminated. It must be one JSON
 * object with a non-empty string "event". For pusher:* events data may be an
 * object, a string holding a JSON object, or absent; channel, auth, user_data
 * must be strings there and channel_data a string or an object (re-serialised
 * compactly); data.channel wins over a top-level "channel". Any other event is
 * a client event: data may be any JSON value. Returns 0, or -1 with
 * err->status 400 (not a Pusher code: answer with pusher:error, code null, and
 * keep the connection) and a message naming the problem; out is then left
 * empty. Rejects nesting deeper than MSG_MAX_DEPTH. The caller caps len.
 * Free out with msg_in_free (also after a failure). */
int msg_parse(const char *text, size_t len, struct msg_in *out, struct mn_err *err);
void msg_in_free(struct msg_in *m);

/* A presence member from channel_data or user_data: user_id (string or
 * integer, normalised to decimal text) and user_info re-serialised compactly
 * (any JSON value; the text "null" when absent or null). */
struct msg_member {
    char *user_id;
    char *user_info; /* JSON text */
    size_t info_len;
};
/* Parses channel_data / user_data text {"user_id":..,"user_info":..} (id_key
 * "user_id") or sign-in user_data {"id":..,"user_info":..} (id_key "id");
 * other keys are ignored. Refuses an id that is neither a string nor an
 * integer, an empty one, one longer than max_id_len characters (UTF-8 code
 * points), and user_info
 * whose compact form exceeds max_info bytes: -1, err->status 400 and a message
 * naming the key or limit; out is then left empty. Free out with
 * msg_member_free (also after a failure). */
int msg_parse_member(const char *text, size_t len, const char *id_key, size_t max_id_len,
                     size_t max_info, struct msg_member *out, struct mn_err *err);
void msg_member_free(struct msg_member *m);
/* A pusher_internal:member_added or member_removed event as cluster.lua
 * publishes it ({"event":..,"channel":..,"data":"{\"user_id\":..,
 * \"user_info\":..}"}, the id a string): *added tells which, out gets the
 * user id and (added) user_info re-serialised compactly, as msg_parse_member
 * made it before it went to Redis. Returns 1 for one, 0 for any other event
 * (told from its opening bytes, nothing parsed), -1 when garbled. Free out
 * with msg_member_free (also after 0 or -1). */
int msg_member_event_parse(const char *text, size_t len, bool *added,
                           struct msg_member *out);

/* The "watchlist" of sign-in user_data: ids (string or integer, as text; the
 * rules of msg_parse_member's id), the first max_ids of them in ids[0..n), and
 * total, the length of the whole array (total > n: the caller answers 4302).
 * Absent or null: n = total = 0. Refuses user_data that is not JSON, a
 * watchlist that is not an array and an invalid entry among the first max_ids:
 * -1, err->status 400; out is then left empty. Duplicates are kept. Free out
 * with msg_watchlist_free (also after a failure). */
struct msg_watchlist {
    char **ids;
    size_t n, total;
};
int msg_parse_watchlist(const char *text, size_t len, size_t max_ids, size_t max_id_len,
                        struct msg_watchlist *out, struct mn_err *err);
void msg_watchlist_free(struct msg_watchlist *w);

#endif
