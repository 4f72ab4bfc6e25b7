/* config_docs.c - docs/config.md, generated from the key table
 * (`micronotifier-gateway --config-docs`; tests/config-docs.sh compares). */
#include "config_int.h"

#include <stdio.h>
#include <string.h>

#include "mn.h"

/* --- docs/config.md ------------------------------------------------------ */

static const char docs_intro[] =
    "# Configuration file\n"
    "\n"
    "<!-- Generated from the key table in shared/config_keys.c by\n"
    "     `micronotifier-gateway --config-docs`: edit the table, not this page. -->\n"
    "\n"
    "MicroNotifier reads one JSON file, given with `-c FILE`. Without one, the\n"
    "gateway runs on an embedded default: standalone, `localhost:8111`, one\n"
    "application `demo` (key `demo-key`, secret `demo-secret`, client events on).\n"
    "\n"
    "The original MicroNotifier's format stays valid: `host`, `port`,\n"
    "`certificate`, `private-key`, `applications` (`name`, `key`, `secret`) and\n"
    "`redis` (`address`, `database`, `password`, `sentinel`, `secure`) mean what\n"
    "they meant there. Every other key is an addition with a default.\n"
    "\n"
    "- Everything is checked before the daemon starts. An unknown key, a value of\n"
    "  the wrong type or out of range, or the same key twice in one object refuses\n"
    "  the whole file with the file, the JSON path and the reason, for example\n"
    "  `config.json: applications[1].key: must be letters, digits, '-' or '_'`.\n"
    "  A misspelt key is never silently ignored. `--check-config` checks a file\n"
    "  and exits 0 when it is valid, 1 when not.\n"
    "- An empty string in `certificate`, `private-key`, `local-socket` or\n"
    "  `redis.password` means unset, as in the original.\n"
    "- TLS is on when both `certificate` and `private-key` are set; one without\n"
    "  the other is an error.\n"
    "- A relative path in `certificate`, `private-key` or `local-socket` is\n"
    "  relative to the directory of the config file, not to the working\n"
    "  directory (the original used the working directory).\n"
    "- Sizes are in bytes, times in seconds. The file may be at most 1 MiB.\n"
    "\n";

static const char docs_example[] = "{\n"
                                   "    \"host\": \"localhost\",\n"
                                   "    \"port\": 8111,\n"
                                   "    \"certificate\": \"\",\n"
                                   "    \"private-key\": \"\",\n"
                                   "    \"applications\": [\n"
                                   "        {\n"
                                   "            \"name\": \"app1\",\n"
                                   "            \"key\": \"app1-key\",\n"
                                   "            \"secret\": \"app1-secret\",\n"
                                   "            \"client-events\": true\n"
                                   "        }\n"
                                   "    ],\n"
                                   "    \"redis\": {\n"
                                   "        \"address\": \"localhost:6379\",\n"
                                   "        \"database\": 0,\n"
                                   "        \"password\": \"\",\n"
                                   "        \"sentinel\": false\n"
                                   "    }\n"
                                   "}\n";

struct docs_section {
    enum cfg_level lvl;
    const char *title;
    const char *text;
};

static const struct docs_section sections[] = {
    {LVL_TOP, "## Top-level keys\n", ""},
    {LVL_APP, "## Keys of each `applications[]` entry\n",
     "`name`, `key` and `secret` are required. Each application is separate:\n"
     "its clients, channels and events never meet another application's.\n"},
    {LVL_REDIS, "## Keys of `redis`\n",
     "With `redis`, every gateway and API daemon of the fleet shares events and\n"
     "channel state through it. For Sentinel, list the sentinels:\n"
     "`\"redis\": {\"address\": \"10.0.0.1:26379,10.0.0.2:26379\", \"sentinel\": true,\n"
     "\"master-name\": \"mymaster\"}`.\n"},
    {LVL_API, "## Keys of `api`\n",
     "Read by `micronotifier-api` only (see docs/api-daemon.md). Give `fastcgi`,\n"
     "`scgi` or both. A Unix socket is created with `socket-mode`; a stale one is\n"
     "replaced, one another process listens on is refused.\n"},
    {LVL_HOOK, "## Keys of each `applications[].webhooks[]` entry\n",
     "Webhooks are signed like Pusher's (`X-Pusher-Key`, `X-Pusher-Signature`:\n"
     "HMAC-SHA256 of the body with the app secret; `Content-Type:\n"
     "application/json`), retried with back-off for 5 minutes when the receiver\n"
     "does not answer 2xx within 5 s, and sent from a thread of their own, so a\n"
     "slow receiver never delays WebSocket delivery (docs/architecture.md).\n"
     "Example: `\"webhooks\": [{\"url\": \"http://127.0.0.1:3000/pusher/webhooks\",\n"
     "\"events\": [\"channel_occupied\", \"channel_vacated\"]}]`.\n"},
};

/* A table cell: '|' would end the cell, so it is escaped. */
static void
docs_cell(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

static void
docs_row(FILE *out, const struct cfg_key *k)
{
    static const char *const types[] = {"string",           "boolean",         "integer",
                                        "array of objects", "object",          "object",
                                        "array of objects", "array of strings"};

    fprintf(out, "| `%s` | %s", cfg_leaf_of(k), types[k->type]);
    if (k->type == CFG_UINT)
        fprintf(out, " %u..%u", k->min, k->max);
    if (k->flags & CFG_REQUIRED)
        fputs(" | required | ", out);
    else if (k->def == NULL)
        fputs(" | unset | ", out);
    else if (k->def[0] == '(')
        fprintf(out, " | *%.*s* | ", (int)strlen(k->def) - 2, k->def + 1);
    else
        fprintf(out, " | `%s` | ", k->def);
    docs_cell(out, k->help);
    fputs(" |\n", out);
}

void
config_write_docs(FILE *out)
{
    fputs(docs_intro, out);
    for (size_t s = 0; s < ARRAY_LEN(sections); s++) {
        fprintf(out, "%s\n%s%s", sections[s].title, sections[s].text,
                sections[s].text[0] != '\0' ? "\n" : "");
        fputs("| Key | Type | Default | Meaning |\n|---|---|---|---|\n", out);
        for (size_t i = 0; i < cfg_nkeys; i++)
            if (cfg_level_of(&cfg_keys[i]) == sections[s].lvl)
                docs_row(out, &cfg_keys[i]);
        fputs("\n", out);
    }
    fprintf(out,
            "## Example\n\nThe original format, with one extension "
            "(`client-events`):\n\n```json\n%s```\n",
            docs_example);
}
