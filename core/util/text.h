/*
 * text.h - small text helpers that every layer may use and that know
 * nothing of Observatory: a printable, bounded copy of a string that came
 * from outside (a request, a file, a plugin), for error messages and logs.
 */
#ifndef OBS_UTIL_TEXT_H
#define OBS_UTIL_TEXT_H

#include <stddef.h>

/* Copies `s` into buf (size len >= 1) for an error message: bytes outside
 * printable ASCII become '?', and long text is cut with "...". */
void text_sanitize(const char *s, char *buf, size_t len);

/* Like text_sanitize for a message of several lines (a list of errors):
 * the lines joined with "; ", the last newline dropped, cut at len - 1. */
void text_one_line(const char *s, char *buf, size_t len);

#endif /* OBS_UTIL_TEXT_H */
