/* ascii.h: the character classes the parsers share.
 *
 * Protocol text (HTTP, JSON, percent-encoding) is defined over ASCII bytes, not characters of
 * the current locale, so wsrelay never uses <ctype.h> (whose answers depend on setlocale and
 * whose functions take an int that must not be a negative char). Pure, header-only.
 */
#ifndef WSRELAY_ASCII_H
#define WSRELAY_ASCII_H

#include <stdbool.h>

/* '0'..'9' (RFC 5234 DIGIT). */
static inline bool ascii_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* The value of a hex digit (RFC 5234 HEXDIG, either case), or -1. */
static inline int ascii_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* RFC 9110 §5.6.2: token = 1*tchar; tchar is any VCHAR except the delimiters "(),/:;<=>?@[\]{}
 * and the double quote. Methods, field names and content codings are tokens. */
static inline bool ascii_is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
        return true;
    default:
        return false;
    }
}

/* 'A'..'Z' to lower case; every other byte unchanged. */
static inline unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
}

#endif
