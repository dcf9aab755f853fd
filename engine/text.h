/*
 * text.h - small text helpers shared by the engine, the tools and the client
 * library: bounded message formatting, making peer-supplied bytes safe to
 * echo, hex, strict UTF-8, JSON strings.
 */
#ifndef TCA_TEXT_H
#define TCA_TEXT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* snprintf into buf that tolerates NULL/0 and truncates silently: for error
 * and refusal messages, where truncation is acceptable. */
void tca_setf(char *buf, size_t buflen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Peer- or device-chosen bytes echoed in a message: printable ASCII except
 * '"', everything else '?'; "..." marks truncation.  out is NUL-terminated. */
void tca_sanitize(const unsigned char *s, size_t len, char *out, size_t outsz);

/* Lowercase hex of len bytes into out (2*len+1 bytes). */
void tca_hex(const unsigned char *in, size_t len, char *out);

/* Length (1..4) of the valid UTF-8 sequence at s within avail bytes, or 0:
 * RFC 3629 strict - no overlong forms, no surrogates, nothing past U+10FFFF. */
size_t tca_utf8_seq_len(const unsigned char *s, size_t avail);

/* 1 if s[0..len) is entirely valid UTF-8 (as above), else 0. */
int tca_utf8_valid(const unsigned char *s, size_t len);

/* As tca_utf8_seq_len, also decoding the character into *cp_ptr. */
size_t tca_utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp_ptr);

/*
 * "Cc", "Cf", "Zl" or "Zp" if cp is a control, format, line separator or
 * paragraph separator character (Unicode 15.0 general categories: C0, DEL,
 * C1 incl. U+0085 NEL; soft hyphen, zero-width and bidi controls such as
 * U+202E, BOM, tags, ...; U+2028; U+2029), else NULL.  Such characters are
 * invisible or move, reorder or break text: device ids refuse them and
 * tca_escape() escapes them.
 */
const char *tca_unicode_hidden(uint32_t cp);

/*
 * Peer text made safe to write to the log or the journal, readable: valid
 * UTF-8 is copied, except characters tca_unicode_hidden() names, which are
 * written as \u{XXXX} (hex code point, upper case, at least 4 digits); a
 * byte that is not UTF-8 is written as \x{XX}.  Nothing else is escaped (a
 * backslash stays a backslash).  out is NUL-terminated; a cut is made
 * between characters and marked "...".  Returns the length written.
 */
size_t tca_escape(const unsigned char *s, size_t len, char *out, size_t outsz);

/* Unix seconds as "YYYY-MM-DDTHH:MM:SSZ" (UTC); out holds at least 21
 * bytes.  A time gmtime cannot represent is written as the decimal number. */
void tca_iso_time(int64_t t, char *out, size_t outsz);

/* Writes s[0..len) as a JSON string: quotes, backslashes and control
 * characters escaped, bytes that are not UTF-8 replaced by U+FFFD so the
 * output always parses. */
void tca_json_string(FILE *f, const unsigned char *s, size_t len);

#endif
