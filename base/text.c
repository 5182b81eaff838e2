// base/text.c — byte-level text checks shared by the readers: UTF-8 validity and the FNV-1a hash.
#include "base/base.h"

size_t hn_utf8_check(const char *text, size_t n) {
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        int len = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3 : c >= 0xF0 && c < 0xF5 ? 4 : 0;
        if (!len || i + len > n) return i;
        for (int k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        // overlongs (E0 80..9F, F0 80..8F), surrogates (ED A0..BF), past U+10FFFF (F4 90..)
        if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0) || (c == 0xF0 && s[i + 1] < 0x90) ||
            (c == 0xF4 && s[i + 1] >= 0x90))
            return i;
        i += len;
    }
    return n;
}

uint64_t hn_fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}
