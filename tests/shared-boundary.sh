#!/bin/sh
# shared/ must never include libwebsockets or libfcgi headers, and only
# sign.c may touch OpenSSL's digests; signature comparisons never use memcmp.
src=${MN_SRCDIR:-$(dirname "$0")/..}
echo "1..3"
if grep -nE '#include *[<"](libwebsockets|fcgi|fcgiapp|fcgi_stdio)' "$src"/shared/*.[ch]; then
    echo "not ok 1 - shared/ includes a transport header"
else
    echo "ok 1 - shared/ includes no libwebsockets or libfcgi header"
fi
if grep -lE '#include *<openssl/' "$src"/shared/*.[ch] | grep -v 'shared/sign.c$'; then
    echo "not ok 2 - OpenSSL used outside sign.c"
else
    echo "ok 2 - only sign.c includes OpenSSL"
fi
if grep -nE '\b(memcmp|strcmp|strncmp)\b' "$src"/shared/sign.c; then
    echo "not ok 3 - sign.c compares with a non-constant-time function"
else
    echo "ok 3 - sign.c compares only in constant time"
fi
