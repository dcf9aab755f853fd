/* text.c - shared text helpers (see text.h). */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "text.h"

void
tca_setf(char *buf, size_t buflen, const char *fmt, ...)
{
	va_list ap;

	if (buf == NULL || buflen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, buflen, fmt, ap);
	va_end(ap);
}

void
tca_sanitize(const unsigned char *s, size_t len, char *out, size_t outsz)
{
	size_t i, o = 0;

	if (outsz == 0)
		return;
	for (i = 0; i < len && o + 1 < outsz; i++)
		out[o++] = (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"') ? (char)s[i] : '?';
	if (i < len && o >= 3 && outsz > 4) {
		out[o - 3] = '.';
		out[o - 2] = '.';
		out[o - 1] = '.';
	}
	out[o] = '\0';
}

void
tca_hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

size_t
tca_utf8_seq_len(const unsigned char *s, size_t avail)
{
	size_t n, i;
	uint32_t cp;

	if (avail == 0)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else
		return 0;
	if (avail < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

size_t
tca_utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp_ptr)
{
	size_t n = tca_utf8_seq_len(s, avail), i;
	uint32_t cp;

	if (n == 0)
		return 0;
	cp = n == 1 ? s[0] : n == 2 ? (s[0] & 0x1fu) : n == 3 ? (s[0] & 0x0fu) : (s[0] & 0x07u);
	for (i = 1; i < n; i++)
		cp = (cp << 6) | (s[i] & 0x3fu);
	*cp_ptr = cp;
	return n;
}

/*
 * General categories Cc (control), Cf (format), Zl (line separator) and Zp
 * (paragraph separator) of the Unicode Character Database, version 15.0
 * (UnicodeData.txt, extracted/DerivedGeneralCategory.txt).  Checked against
 * the UCD 14.0.0 tables (Python's unicodedata: identical) plus the one 15.0
 * change to these categories, Cf U+13439..1343F (Egyptian hieroglyph format
 * controls, block extended in 15.0).  Sorted and disjoint: binary search.
 * A newer Unicode version may add format characters: update the table.
 */
static const struct {
	uint32_t lo, hi;
	char cat[3];
} hidden_chars[] = {
	{ 0x0000, 0x001f, "Cc" }, { 0x007f, 0x009f, "Cc" }, { 0x00ad, 0x00ad, "Cf" },
	{ 0x0600, 0x0605, "Cf" }, { 0x061c, 0x061c, "Cf" }, { 0x06dd, 0x06dd, "Cf" },
	{ 0x070f, 0x070f, "Cf" }, { 0x0890, 0x0891, "Cf" }, { 0x08e2, 0x08e2, "Cf" },
	{ 0x180e, 0x180e, "Cf" }, { 0x200b, 0x200f, "Cf" }, { 0x2028, 0x2028, "Zl" },
	{ 0x2029, 0x2029, "Zp" }, { 0x202a, 0x202e, "Cf" }, { 0x2060, 0x2064, "Cf" },
	{ 0x2066, 0x206f, "Cf" }, { 0xfeff, 0xfeff, "Cf" }, { 0xfff9, 0xfffb, "Cf" },
	{ 0x110bd, 0x110bd, "Cf" }, { 0x110cd, 0x110cd, "Cf" }, { 0x13430, 0x1343f, "Cf" },
	{ 0x1bca0, 0x1bca3, "Cf" }, { 0x1d173, 0x1d17a, "Cf" }, { 0xe0001, 0xe0001, "Cf" },
	{ 0xe0020, 0xe007f, "Cf" },
};

const char *
tca_unicode_hidden(uint32_t cp)
{
	size_t lo = 0, hi = sizeof(hidden_chars) / sizeof(hidden_chars[0]), mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (cp < hidden_chars[mid].lo)
			hi = mid;
		else if (cp > hidden_chars[mid].hi)
			lo = mid + 1;
		else
			return hidden_chars[mid].cat;
	}
	return NULL;
}

size_t
tca_escape(const unsigned char *s, size_t len, char *out, size_t outsz)
{
	size_t i = 0, o = 0, n, piece, mark = 0;
	const unsigned char *src;
	uint32_t cp;
	char esc[16];

	if (outsz == 0)
		return 0;
	while (i < len) {
		src = s + i;
		if ((n = tca_utf8_decode(s + i, len - i, &cp)) == 0) {
			snprintf(esc, sizeof(esc), "\\x{%02X}", s[i]);
			src = (const unsigned char *)esc;
			n = 1;
			piece = strlen(esc);
		} else if (tca_unicode_hidden(cp) != NULL) {
			snprintf(esc, sizeof(esc), "\\u{%04X}", (unsigned int)cp);
			src = (const unsigned char *)esc;
			piece = strlen(esc);
		} else
			piece = n;
		if (o + piece + 1 > outsz) {
			/* cut at the last whole piece that leaves room for "..." */
			o = mark;
			if (o + 3 + 1 <= outsz) {
				memcpy(out + o, "...", 3);
				o += 3;
			}
			break;
		}
		memcpy(out + o, src, piece);
		o += piece;
		i += n;
		if (o + 3 + 1 <= outsz)
			mark = o;
	}
	out[o] = '\0';
	return o;
}

int
tca_utf8_valid(const unsigned char *s, size_t len)
{
	size_t i, n;

	for (i = 0; i < len; i += n)
		if ((n = tca_utf8_seq_len(s + i, len - i)) == 0)
			return 0;
	return 1;
}

void
tca_json_string(FILE *f, const unsigned char *s, size_t len)
{
	size_t i = 0, n;

	fputc('"', f);
	while (i < len) {
		unsigned char c = s[i];

		if (c == '"' || c == '\\') {
			fputc('\\', f);
			fputc(c, f);
			i++;
		} else if (c == '\n') {
			fputs("\\n", f);
			i++;
		} else if (c == '\r') {
			fputs("\\r", f);
			i++;
		} else if (c == '\t') {
			fputs("\\t", f);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(f, "\\u%04x", c);
			i++;
		} else if ((n = tca_utf8_seq_len(s + i, len - i)) == 0) {
			fputs("\\ufffd", f);
			i++;
		} else {
			fwrite(s + i, 1, n, f);
			i += n;
		}
	}
	fputc('"', f);
}

void
tca_iso_time(int64_t t, char *out, size_t outsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (outsz == 0)
		return;
	if (gmtime_r(&tt, &tm) == NULL || strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, outsz, "%lld", (long long)t);
}
