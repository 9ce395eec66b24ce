/*
 * text.c - printable copies of untrusted strings (text.h).
 */
#include "util/text.h"

#include <string.h>

void text_sanitize(const char *s, char *buf, size_t len)
{
    if (len == 0)
        return;
    size_t n = 0, slen = strlen(s);
    int cut = slen > len - 1;
    size_t keep = cut ? (len > 4 ? len - 4 : 0) : slen;
    for (size_t i = 0; i < keep && n + 1 < len; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (cut)
        for (int i = 0; i < 3 && n + 1 < len; i++)
            buf[n++] = '.';
    buf[n] = '\0';
}

void text_one_line(const char *s, char *buf, size_t len)
{
    if (len == 0)
        return;
    size_t n = 0;
    for (const char *p = s; *p && n + 1 < len; p++) {
        if (*p == '\n') {
            if (p[1] && n + 3 < len) {
                buf[n++] = ';';
                buf[n++] = ' ';
            }
            continue;
        }
        unsigned char c = (unsigned char)*p;
        buf[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    buf[n] = '\0';
}
