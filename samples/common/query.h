/*
 * query.h - tiny query-string helpers shared by the isapi-gateway samples.
 *
 * ISAPI hands an extension the query string exactly as the client sent it:
 * ecb->lpszQueryString is everything after the '?', still URL-encoded, and ""
 * (never NULL) when the URL has no query. Nothing in ISAPI decodes it for you,
 * so the samples use these three helpers:
 *
 *   query_get(qs, "name", buf, sizeof buf)   copy the decoded value of name=...
 *   query_get_ulong(qs, "ms", 0)             read a decimal number (or a default)
 *   query_is(qs, "mode", "split")            compare a decoded value
 *
 * Everything is static inline, so just #include "common/query.h"; there is no
 * library to link. Parameters are separated by '&'; a name without '=' ("?raw")
 * counts as present with an empty value; when a name repeats, the first wins.
 * Decoding turns "%XX" into the byte 0xXX and '+' into a space (form encoding).
 * None of these functions touch errno, so on Linux they never disturb
 * GetLastError() (which isapi.h maps to errno there).
 */
#ifndef ISAPI_SAMPLES_QUERY_H
#define ISAPI_SAMPLES_QUERY_H

#include <stddef.h>
#include <string.h>

/* Value of one hexadecimal digit, or -1 if c is not one. */
static inline int query_hex_digit(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/*
 * Looks up parameter `name` in the raw query string `qs` (may be NULL) and
 * copies its URL-decoded value into out[outsize], always NUL-terminated and
 * silently truncated to outsize - 1 bytes. Returns 1 when the parameter is
 * present (even with an empty value), 0 when it is not; out is "" then.
 * A "%00" in the value ends it early: the samples treat values as C strings.
 */
static inline int query_get(const char *qs, const char *name, char *out, size_t outsize) {
  size_t name_len = strlen(name);
  const char *p = qs;

  if (out != NULL && outsize > 0) out[0] = '\0';
  if (p == NULL) return 0;

  while (*p != '\0') {
    /* One parameter runs from p up to the next '&' (or the end). */
    const char *end = strchr(p, '&');
    const char *eq;
    if (end == NULL) end = p + strlen(p);
    eq = memchr(p, '=', (size_t)(end - p));

    if ((size_t)((eq != NULL ? eq : end) - p) == name_len && memcmp(p, name, name_len) == 0) {
      const char *v = (eq != NULL) ? eq + 1 : end;
      size_t n = 0;
      if (out == NULL || outsize == 0) return 1;
      while (v < end && n + 1 < outsize) {
        int hi, lo;
        if (*v == '%' && end - v >= 3 &&
            (hi = query_hex_digit((unsigned char)v[1])) >= 0 &&
            (lo = query_hex_digit((unsigned char)v[2])) >= 0) {
          out[n++] = (char)(hi * 16 + lo);
          v += 3;
        } else {
          out[n++] = (*v == '+') ? ' ' : *v;
          v++;
        }
      }
      out[n] = '\0';
      return 1;
    }
    p = (*end == '&') ? end + 1 : end;
  }
  return 0;
}

/*
 * Reads parameter `name` as an unsigned decimal number. Returns `def` when the
 * parameter is absent, empty, or does not start with a digit; parsing stops at
 * the first non-digit ("12abc" gives 12) and clamps at the largest unsigned long.
 */
static inline unsigned long query_get_ulong(const char *qs, const char *name, unsigned long def) {
  char buf[32];
  unsigned long value = 0;
  const char *s = buf;

  if (!query_get(qs, name, buf, sizeof buf)) return def;
  if (*s < '0' || *s > '9') return def;
  for (; *s >= '0' && *s <= '9'; s++) {
    unsigned long digit = (unsigned long)(*s - '0');
    if (value > (~0UL - digit) / 10) return ~0UL; /* would overflow: clamp */
    value = value * 10 + digit;
  }
  return value;
}

/* 1 when parameter `name` is present and its decoded value equals `expected`. */
static inline int query_is(const char *qs, const char *name, const char *expected) {
  char buf[256];
  return query_get(qs, name, buf, sizeof buf) && strcmp(buf, expected) == 0;
}

#endif /* ISAPI_SAMPLES_QUERY_H */
