/* chan.h - Pusher names: channel kind from prefix, channel/event name rules,
 * socket_id format. Pure: no I/O, no allocation. Authorisation is in sign.c. */
#ifndef MN_CHAN_H
#define MN_CHAN_H

#include <stdbool.h>
#include <stddef.h>

#define CHAN_NAME_MAX 164  /* Pusher's documented limit, prefix included */
#define CHAN_EVENT_MAX 200 /* the server libraries' limit */
#define CHAN_SOCKET_ID_MAX 64
#define CHAN_USER_PREFIX "#server-to-user-"

enum chan_kind {
    CHAN_INVALID = 0,
    CHAN_PUBLIC,    /* no prefix, or cache- */
    CHAN_PRIVATE,   /* private-, private-cache- */
    CHAN_ENCRYPTED, /* private-encrypted-, private-encrypted-cache- */
    CHAN_PRESENCE,  /* presence-, presence-cache- */
    CHAN_USER,      /* #server-to-user-{id}: only for the signed-in user */
};

/* Kind of a channel name; CHAN_INVALID when empty, longer than CHAN_NAME_MAX,
 * or holding a character outside [A-Za-z0-9_\-=@,.;] (a leading
 * "#server-to-user-" is the only place '#' may appear, and needs a non-empty id). */
enum chan_kind chan_kind_of(const char *name, size_t len);
/* True for the four cache prefixes (cache-, private-cache-,
 * private-encrypted-cache-, presence-cache-). Does not validate the rest. */
bool chan_is_cache(const char *name, size_t len);
/* True for private, encrypted and presence: kinds whose subscription is signed. */
bool chan_kind_needs_auth(enum chan_kind kind);
/* Event names: 1..CHAN_EVENT_MAX bytes, no control characters. Laravel's
 * class names with '\' are allowed, as Pusher allows them. */
bool chan_event_name_ok(const char *name, size_t len);
/* True for names starting "client-" (client events). */
bool chan_is_client_event(const char *name, size_t len);
/* socket_id: ^\d+\.\d+$ and at most CHAN_SOCKET_ID_MAX bytes. */
bool chan_socket_id_ok(const char *s, size_t len);

#endif
