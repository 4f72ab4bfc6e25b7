/* mn.h - project-wide macros. Included last, so its poisoning covers the file. */
#ifndef MN_MN_H
#define MN_MN_H

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MN_UNUSED __attribute__((unused))

/* Unbounded string functions: use buf_* or snprintf with a truncation check. */
#pragma GCC poison strcpy strcat sprintf vsprintf gets

#endif
