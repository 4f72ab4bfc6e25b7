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

/* {"event":E,"channel":C,"data":"<data as JSON string>"[,"user_id":U]};
 * channel and user_id may be NULL (omitted). data is sent as a string as is. */
void msg_event(struct buf *out, const char *event, size_t elen, const char *channel,
               size_t clen, const char *data, size_t dlen, const char *user_id,
               size_t ulen);
void msg_connection_established(struct buf *out, const char *socket_id,
                                unsigned activity_timeout);
/* pusher:error; code < 0 is sent as null. */
void msg_error(struct buf *out, int code, const char *message);
void msg_ping(struct buf *out);
void msg_pong(struct buf *out);
/* pusher_internal:subscription_succeeded; presence_json is the decoded
 * {"presence":{...}} object text for presence channels, NULL otherwise. */
void msg_subscription_succeeded(struct buf *out, const char *channel, size_t clen,
                                const char *presence_json, size_t plen);
/* pusher:subscription_error {"type":type,"error":error,"status":status} */
void msg_subscription_error(struct buf *out, const char *channel, size_t clen,
                            const char *type, const char *error, int status);
/* pusher_internal:member_added {"user_id":U,"user_info":<info JSON>} */
void msg_member_added(struct buf *out, const char *channel, size_t clen,
                      const char *user_id, size_t ulen, const char *info_json,
                      size_t ilen);
void msg_member_removed(struct buf *out, const char *channel, size_t clen,
                        const char *user_id, size_t ulen);

/* Builds the presence object {"presence":{"ids":[..],"hash":{id:info},"count":N}}
 * incrementally: begin, add each member, end. */
void msg_presence_begin(struct buf *out);
void msg_presence_add(struct buf *out, size_t index, const char *user_id, size_t ulen,
                      const char *info_json, size_t ilen);
/* Needs the same ids again for the "ids" array: pass them as a list. */
void msg_presence_end(struct buf *out, const char *const *ids, const size_t *id_lens,
                      size_t count);

/* --- decoding --- */

/* A client message, all strings owned (NUL-terminated copies), NULL when absent. */
struct msg_in {
    char *event;
    char *channel;      /* top-level "channel" (client events) or data.channel */
    char *data;         /* client events: data as a string (objects re-serialised) */
    size_t data_len;
    char *auth;         /* pusher:subscribe / pusher:signin */
    char *channel_data; /* pusher:subscribe on presence */
    char *user_data;    /* pusher:signin */
};

/* Parses one text frame. Returns 0, or -1 with err->status set to the Pusher
 * error code to answer with (4000s never close here; the caller decides) and a
 * message. Accepts data as an object or as a string holding a JSON object for
 * pusher:* events. Rejects nesting deeper than 32. Free with msg_in_free. */
int msg_parse(const char *text, size_t len, struct msg_in *out, struct mn_err *err);
void msg_in_free(struct msg_in *m);

/* A presence member from channel_data or user_data: user_id (string or
 * number, normalised to a string) and user_info re-serialised compactly
 * ("null" when absent). */
struct msg_member {
    char *user_id;
    char *user_info; /* JSON text */
    size_t info_len;
};
/* Parses channel_data / user_data text {"user_id":..,"user_info":..} (id_key
 * "user_id") or sign-in user_data {"id":..,"user_info":..} (id_key "id").
 * Enforces max_id_len and max_info bytes for user_info; -1 with a message. */
int msg_parse_member(const char *text, size_t len, const char *id_key,
                     size_t max_id_len, size_t max_info, struct msg_member *out,
                     struct mn_err *err);
void msg_member_free(struct msg_member *m);

#endif
