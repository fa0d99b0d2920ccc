/*
 * core/line/render.c — the line editor's display: UTF-8 decoding and
 * widths, the layout of prompt and line over the screen's rows (or along
 * one row, horizontal-scroll-mode), and the minimal redraw.
 *
 * Widths come from kart's own table, made from glibc's wcwidth() in its
 * C.UTF-8 locale (Unicode 14): the process locale plays no part. Code
 * points glibc calls unprintable (unassigned) take one column.
 *
 * Wrap mode keeps, for each byte of the line, where the character there
 * starts (the end of the one before it); an edit at offset o invalidates
 * only what follows o, and the redraw rewrites the screen from the first
 * changed character to the end of the line, then clears what is left of
 * the old text. A key typed at the end of a line of 100,000 characters
 * costs one character's layout and output.
 *
 * Horizontal mode shows a window of one row: the cells of the window are
 * compared with those on the screen and only the changed run goes out.
 */
#include "line_private.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* clang-format off */
static const uint32_t kart__zero_width[][2] = {
    {0x300, 0x36F}, {0x483, 0x489}, {0x591, 0x5BD}, {0x5BF, 0x5BF},
    {0x5C1, 0x5C2}, {0x5C4, 0x5C5}, {0x5C7, 0x5C7}, {0x610, 0x61A},
    {0x61C, 0x61C}, {0x64B, 0x65F}, {0x670, 0x670}, {0x6D6, 0x6DC},
    {0x6DF, 0x6E4}, {0x6E7, 0x6E8}, {0x6EA, 0x6ED}, {0x711, 0x711},
    {0x730, 0x74A}, {0x7A6, 0x7B0}, {0x7EB, 0x7F3}, {0x7FD, 0x7FD},
    {0x816, 0x819}, {0x81B, 0x823}, {0x825, 0x827}, {0x829, 0x82D},
    {0x859, 0x85B}, {0x898, 0x89F}, {0x8CA, 0x8E1}, {0x8E3, 0x902},
    {0x93A, 0x93A}, {0x93C, 0x93C}, {0x941, 0x948}, {0x94D, 0x94D},
    {0x951, 0x957}, {0x962, 0x963}, {0x981, 0x981}, {0x9BC, 0x9BC},
    {0x9C1, 0x9C4}, {0x9CD, 0x9CD}, {0x9E2, 0x9E3}, {0x9FE, 0x9FE},
    {0xA01, 0xA02}, {0xA3C, 0xA3C}, {0xA41, 0xA42}, {0xA47, 0xA48},
    {0xA4B, 0xA4D}, {0xA51, 0xA51}, {0xA70, 0xA71}, {0xA75, 0xA75},
    {0xA81, 0xA82}, {0xABC, 0xABC}, {0xAC1, 0xAC5}, {0xAC7, 0xAC8},
    {0xACD, 0xACD}, {0xAE2, 0xAE3}, {0xAFA, 0xAFF}, {0xB01, 0xB01},
    {0xB3C, 0xB3C}, {0xB3F, 0xB3F}, {0xB41, 0xB44}, {0xB4D, 0xB4D},
    {0xB55, 0xB56}, {0xB62, 0xB63}, {0xB82, 0xB82}, {0xBC0, 0xBC0},
    {0xBCD, 0xBCD}, {0xC00, 0xC00}, {0xC04, 0xC04}, {0xC3C, 0xC3C},
    {0xC3E, 0xC40}, {0xC46, 0xC48}, {0xC4A, 0xC4D}, {0xC55, 0xC56},
    {0xC62, 0xC63}, {0xC81, 0xC81}, {0xCBC, 0xCBC}, {0xCBF, 0xCBF},
    {0xCC6, 0xCC6}, {0xCCC, 0xCCD}, {0xCE2, 0xCE3}, {0xD00, 0xD01},
    {0xD3B, 0xD3C}, {0xD41, 0xD44}, {0xD4D, 0xD4D}, {0xD62, 0xD63},
    {0xD81, 0xD81}, {0xDCA, 0xDCA}, {0xDD2, 0xDD4}, {0xDD6, 0xDD6},
    {0xE31, 0xE31}, {0xE34, 0xE3A}, {0xE47, 0xE4E}, {0xEB1, 0xEB1},
    {0xEB4, 0xEBC}, {0xEC8, 0xECD}, {0xF18, 0xF19}, {0xF35, 0xF35},
    {0xF37, 0xF37}, {0xF39, 0xF39}, {0xF71, 0xF7E}, {0xF80, 0xF84},
    {0xF86, 0xF87}, {0xF8D, 0xF97}, {0xF99, 0xFBC}, {0xFC6, 0xFC6},
    {0x102D, 0x1030}, {0x1032, 0x1037}, {0x1039, 0x103A}, {0x103D, 0x103E},
    {0x1058, 0x1059}, {0x105E, 0x1060}, {0x1071, 0x1074}, {0x1082, 0x1082},
    {0x1085, 0x1086}, {0x108D, 0x108D}, {0x109D, 0x109D}, {0x1160, 0x11FF},
    {0x135D, 0x135F}, {0x1712, 0x1714}, {0x1732, 0x1733}, {0x1752, 0x1753},
    {0x1772, 0x1773}, {0x17B4, 0x17B5}, {0x17B7, 0x17BD}, {0x17C6, 0x17C6},
    {0x17C9, 0x17D3}, {0x17DD, 0x17DD}, {0x180B, 0x180F}, {0x1885, 0x1886},
    {0x18A9, 0x18A9}, {0x1920, 0x1922}, {0x1927, 0x1928}, {0x1932, 0x1932},
    {0x1939, 0x193B}, {0x1A17, 0x1A18}, {0x1A1B, 0x1A1B}, {0x1A56, 0x1A56},
    {0x1A58, 0x1A5E}, {0x1A60, 0x1A60}, {0x1A62, 0x1A62}, {0x1A65, 0x1A6C},
    {0x1A73, 0x1A7C}, {0x1A7F, 0x1A7F}, {0x1AB0, 0x1ACE}, {0x1B00, 0x1B03},
    {0x1B34, 0x1B34}, {0x1B36, 0x1B3A}, {0x1B3C, 0x1B3C}, {0x1B42, 0x1B42},
    {0x1B6B, 0x1B73}, {0x1B80, 0x1B81}, {0x1BA2, 0x1BA5}, {0x1BA8, 0x1BA9},
    {0x1BAB, 0x1BAD}, {0x1BE6, 0x1BE6}, {0x1BE8, 0x1BE9}, {0x1BED, 0x1BED},
    {0x1BEF, 0x1BF1}, {0x1C2C, 0x1C33}, {0x1C36, 0x1C37}, {0x1CD0, 0x1CD2},
    {0x1CD4, 0x1CE0}, {0x1CE2, 0x1CE8}, {0x1CED, 0x1CED}, {0x1CF4, 0x1CF4},
    {0x1CF8, 0x1CF9}, {0x1DC0, 0x1DFF}, {0x200B, 0x200F}, {0x202A, 0x202E},
    {0x2060, 0x2064}, {0x2066, 0x206F}, {0x20D0, 0x20F0}, {0x2CEF, 0x2CF1},
    {0x2D7F, 0x2D7F}, {0x2DE0, 0x2DFF}, {0x302A, 0x302D}, {0x3099, 0x309A},
    {0xA66F, 0xA672}, {0xA674, 0xA67D}, {0xA69E, 0xA69F}, {0xA6F0, 0xA6F1},
    {0xA802, 0xA802}, {0xA806, 0xA806}, {0xA80B, 0xA80B}, {0xA825, 0xA826},
    {0xA82C, 0xA82C}, {0xA8C4, 0xA8C5}, {0xA8E0, 0xA8F1}, {0xA8FF, 0xA8FF},
    {0xA926, 0xA92D}, {0xA947, 0xA951}, {0xA980, 0xA982}, {0xA9B3, 0xA9B3},
    {0xA9B6, 0xA9B9}, {0xA9BC, 0xA9BD}, {0xA9E5, 0xA9E5}, {0xAA29, 0xAA2E},
    {0xAA31, 0xAA32}, {0xAA35, 0xAA36}, {0xAA43, 0xAA43}, {0xAA4C, 0xAA4C},
    {0xAA7C, 0xAA7C}, {0xAAB0, 0xAAB0}, {0xAAB2, 0xAAB4}, {0xAAB7, 0xAAB8},
    {0xAABE, 0xAABF}, {0xAAC1, 0xAAC1}, {0xAAEC, 0xAAED}, {0xAAF6, 0xAAF6},
    {0xABE5, 0xABE5}, {0xABE8, 0xABE8}, {0xABED, 0xABED}, {0xD7B0, 0xD7C6},
    {0xD7CB, 0xD7FB}, {0xFB1E, 0xFB1E}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F},
    {0xFEFF, 0xFEFF}, {0xFFF9, 0xFFFB}, {0x101FD, 0x101FD}, {0x102E0, 0x102E0},
    {0x10376, 0x1037A}, {0x10A01, 0x10A03}, {0x10A05, 0x10A06}, {0x10A0C, 0x10A0F},
    {0x10A38, 0x10A3A}, {0x10A3F, 0x10A3F}, {0x10AE5, 0x10AE6}, {0x10D24, 0x10D27},
    {0x10EAB, 0x10EAC}, {0x10F46, 0x10F50}, {0x10F82, 0x10F85}, {0x11001, 0x11001},
    {0x11038, 0x11046}, {0x11070, 0x11070}, {0x11073, 0x11074}, {0x1107F, 0x11081},
    {0x110B3, 0x110B6}, {0x110B9, 0x110BA}, {0x110C2, 0x110C2}, {0x11100, 0x11102},
    {0x11127, 0x1112B}, {0x1112D, 0x11134}, {0x11173, 0x11173}, {0x11180, 0x11181},
    {0x111B6, 0x111BE}, {0x111C9, 0x111CC}, {0x111CF, 0x111CF}, {0x1122F, 0x11231},
    {0x11234, 0x11234}, {0x11236, 0x11237}, {0x1123E, 0x1123E}, {0x112DF, 0x112DF},
    {0x112E3, 0x112EA}, {0x11300, 0x11301}, {0x1133B, 0x1133C}, {0x11340, 0x11340},
    {0x11366, 0x1136C}, {0x11370, 0x11374}, {0x11438, 0x1143F}, {0x11442, 0x11444},
    {0x11446, 0x11446}, {0x1145E, 0x1145E}, {0x114B3, 0x114B8}, {0x114BA, 0x114BA},
    {0x114BF, 0x114C0}, {0x114C2, 0x114C3}, {0x115B2, 0x115B5}, {0x115BC, 0x115BD},
    {0x115BF, 0x115C0}, {0x115DC, 0x115DD}, {0x11633, 0x1163A}, {0x1163D, 0x1163D},
    {0x1163F, 0x11640}, {0x116AB, 0x116AB}, {0x116AD, 0x116AD}, {0x116B0, 0x116B5},
    {0x116B7, 0x116B7}, {0x1171D, 0x1171F}, {0x11722, 0x11725}, {0x11727, 0x1172B},
    {0x1182F, 0x11837}, {0x11839, 0x1183A}, {0x1193B, 0x1193C}, {0x1193E, 0x1193E},
    {0x11943, 0x11943}, {0x119D4, 0x119D7}, {0x119DA, 0x119DB}, {0x119E0, 0x119E0},
    {0x11A01, 0x11A0A}, {0x11A33, 0x11A38}, {0x11A3B, 0x11A3E}, {0x11A47, 0x11A47},
    {0x11A51, 0x11A56}, {0x11A59, 0x11A5B}, {0x11A8A, 0x11A96}, {0x11A98, 0x11A99},
    {0x11C30, 0x11C36}, {0x11C38, 0x11C3D}, {0x11C3F, 0x11C3F}, {0x11C92, 0x11CA7},
    {0x11CAA, 0x11CB0}, {0x11CB2, 0x11CB3}, {0x11CB5, 0x11CB6}, {0x11D31, 0x11D36},
    {0x11D3A, 0x11D3A}, {0x11D3C, 0x11D3D}, {0x11D3F, 0x11D45}, {0x11D47, 0x11D47},
    {0x11D90, 0x11D91}, {0x11D95, 0x11D95}, {0x11D97, 0x11D97}, {0x11EF3, 0x11EF4},
    {0x13430, 0x13438}, {0x16AF0, 0x16AF4}, {0x16B30, 0x16B36}, {0x16F4F, 0x16F4F},
    {0x16F8F, 0x16F92}, {0x16FE4, 0x16FE4}, {0x1BC9D, 0x1BC9E}, {0x1BCA0, 0x1BCA3},
    {0x1CF00, 0x1CF2D}, {0x1CF30, 0x1CF46}, {0x1D167, 0x1D169}, {0x1D173, 0x1D182},
    {0x1D185, 0x1D18B}, {0x1D1AA, 0x1D1AD}, {0x1D242, 0x1D244}, {0x1DA00, 0x1DA36},
    {0x1DA3B, 0x1DA6C}, {0x1DA75, 0x1DA75}, {0x1DA84, 0x1DA84}, {0x1DA9B, 0x1DA9F},
    {0x1DAA1, 0x1DAAF}, {0x1E000, 0x1E006}, {0x1E008, 0x1E018}, {0x1E01B, 0x1E021},
    {0x1E023, 0x1E024}, {0x1E026, 0x1E02A}, {0x1E130, 0x1E136}, {0x1E2AE, 0x1E2AE},
    {0x1E2EC, 0x1E2EF}, {0x1E8D0, 0x1E8D6}, {0x1E944, 0x1E94A}, {0xE0001, 0xE0001},
    {0xE0020, 0xE007F}, {0xE0100, 0xE01EF},
};

static const uint32_t kart__double_width[][2] = {
    {0x1100, 0x115F}, {0x231A, 0x231B}, {0x2329, 0x232A}, {0x23E9, 0x23EC},
    {0x23F0, 0x23F0}, {0x23F3, 0x23F3}, {0x25FD, 0x25FE}, {0x2614, 0x2615},
    {0x2648, 0x2653}, {0x267F, 0x267F}, {0x2693, 0x2693}, {0x26A1, 0x26A1},
    {0x26AA, 0x26AB}, {0x26BD, 0x26BE}, {0x26C4, 0x26C5}, {0x26CE, 0x26CE},
    {0x26D4, 0x26D4}, {0x26EA, 0x26EA}, {0x26F2, 0x26F3}, {0x26F5, 0x26F5},
    {0x26FA, 0x26FA}, {0x26FD, 0x26FD}, {0x2705, 0x2705}, {0x270A, 0x270B},
    {0x2728, 0x2728}, {0x274C, 0x274C}, {0x274E, 0x274E}, {0x2753, 0x2755},
    {0x2757, 0x2757}, {0x2795, 0x2797}, {0x27B0, 0x27B0}, {0x27BF, 0x27BF},
    {0x2B1B, 0x2B1C}, {0x2B50, 0x2B50}, {0x2B55, 0x2B55}, {0x2E80, 0x2E99},
    {0x2E9B, 0x2EF3}, {0x2F00, 0x2FD5}, {0x2FF0, 0x2FFB}, {0x3000, 0x3029},
    {0x302E, 0x303E}, {0x3041, 0x3096}, {0x309B, 0x30FF}, {0x3105, 0x312F},
    {0x3131, 0x318E}, {0x3190, 0x31E3}, {0x31F0, 0x321E}, {0x3220, 0xA48C},
    {0xA490, 0xA4C6}, {0xA960, 0xA97C}, {0xAC00, 0xD7A3}, {0xF900, 0xFA6D},
    {0xFA70, 0xFAD9}, {0xFE10, 0xFE19}, {0xFE30, 0xFE52}, {0xFE54, 0xFE66},
    {0xFE68, 0xFE6B}, {0xFF01, 0xFF60}, {0xFFE0, 0xFFE6}, {0x16FE0, 0x16FE3},
    {0x16FF0, 0x16FF1}, {0x17000, 0x187F7}, {0x18800, 0x18CD5}, {0x18D00, 0x18D08},
    {0x1AFF0, 0x1AFF3}, {0x1AFF5, 0x1AFFB}, {0x1AFFD, 0x1AFFE}, {0x1B000, 0x1B122},
    {0x1B150, 0x1B152}, {0x1B164, 0x1B167}, {0x1B170, 0x1B2FB}, {0x1F004, 0x1F004},
    {0x1F0CF, 0x1F0CF}, {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F202},
    {0x1F210, 0x1F23B}, {0x1F240, 0x1F248}, {0x1F250, 0x1F251}, {0x1F260, 0x1F265},
    {0x1F300, 0x1F320}, {0x1F32D, 0x1F335}, {0x1F337, 0x1F37C}, {0x1F37E, 0x1F393},
    {0x1F3A0, 0x1F3CA}, {0x1F3CF, 0x1F3D3}, {0x1F3E0, 0x1F3F0}, {0x1F3F4, 0x1F3F4},
    {0x1F3F8, 0x1F43E}, {0x1F440, 0x1F440}, {0x1F442, 0x1F4FC}, {0x1F4FF, 0x1F53D},
    {0x1F54B, 0x1F54E}, {0x1F550, 0x1F567}, {0x1F57A, 0x1F57A}, {0x1F595, 0x1F596},
    {0x1F5A4, 0x1F5A4}, {0x1F5FB, 0x1F64F}, {0x1F680, 0x1F6C5}, {0x1F6CC, 0x1F6CC},
    {0x1F6D0, 0x1F6D2}, {0x1F6D5, 0x1F6D7}, {0x1F6DD, 0x1F6DF}, {0x1F6EB, 0x1F6EC},
    {0x1F6F4, 0x1F6FC}, {0x1F7E0, 0x1F7EB}, {0x1F7F0, 0x1F7F0}, {0x1F90C, 0x1F93A},
    {0x1F93C, 0x1F945}, {0x1F947, 0x1F9FF}, {0x1FA70, 0x1FA74}, {0x1FA78, 0x1FA7C},
    {0x1FA80, 0x1FA86}, {0x1FA90, 0x1FAAC}, {0x1FAB0, 0x1FABA}, {0x1FAC0, 0x1FAC5},
    {0x1FAD0, 0x1FAD9}, {0x1FAE0, 0x1FAE7}, {0x1FAF0, 0x1FAF6}, {0x20000, 0x2A6DF},
    {0x2A700, 0x2B738}, {0x2B740, 0x2B81D}, {0x2B820, 0x2CEA1}, {0x2CEB0, 0x2EBE0},
    {0x2F800, 0x2FA1D}, {0x30000, 0x3134A},
};
/* clang-format on */

static bool in_table(const uint32_t (*t)[2], size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < t[mid][0])
            hi = mid;
        else if (c > t[mid][1])
            lo = mid + 1;
        else
            return true;
    }
    return false;
}

int kart__wcwidth(uint32_t c)
{
    if (c < 0x20 || (c >= 0x7f && c < 0xa0))
        return -1;
    if (c < 0x300)
        return 1;
    if (in_table(kart__zero_width, sizeof(kart__zero_width) / sizeof(kart__zero_width[0]), c))
        return 0;
    if (c >= 0x1100 &&
        in_table(kart__double_width, sizeof(kart__double_width) / sizeof(kart__double_width[0]), c))
        return 2;
    return 1;
}

size_t kart__utf8_decode(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    *cp = (uint32_t)-1;
    if (n == 0)
        return 0;
    unsigned char c = u[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        v = c & 0x1f;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        v = c & 0x0f;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 1;
    }
    if (n < len)
        return 1;
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xc0) != 0x80)
            return 1;
        v = (v << 6) | (u[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 1;
    *cp = v;
    return len;
}

size_t kart__utf8_encode(uint32_t c, char *out)
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xc0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3f));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xe0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        out[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
    out[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

uint32_t kart__char_at(const kart_line *ed, size_t pos, size_t *n)
{
    uint32_t cp;
    size_t l = kart__utf8_decode(ed->line.p + pos, ed->line.len - pos, &cp);
    if (n)
        *n = l;
    return cp;
}

static bool zero_width_at(const kart_line *ed, size_t pos, size_t *n)
{
    uint32_t cp = kart__char_at(ed, pos, n);
    return cp != (uint32_t)-1 && kart__wcwidth(cp) == 0;
}

size_t kart__next_char(const kart_line *ed, size_t pos)
{
    size_t n;
    if (pos >= ed->line.len)
        return ed->line.len;
    kart__char_at(ed, pos, &n);
    pos += n;
    while (pos < ed->line.len && zero_width_at(ed, pos, &n))
        pos += n;
    return pos;
}

/* The start of the character that ends at pos (one code point). */
static size_t prev_cp(const kart_line *ed, size_t pos)
{
    if (pos == 0)
        return 0;
    /* A UTF-8 character is at most 4 bytes: try the lengths that end
     * exactly at pos. */
    for (size_t back = 2; back <= 4 && back <= pos; back++) {
        unsigned char lead = (unsigned char)ed->line.p[pos - back];
        if ((lead & 0xc0) == 0x80)
            continue;
        size_t n;
        uint32_t cp = kart__char_at(ed, pos - back, &n);
        if (cp != (uint32_t)-1 && n == back)
            return pos - back;
        break;
    }
    return pos - 1;
}

size_t kart__prev_char(const kart_line *ed, size_t pos)
{
    size_t n;
    while (pos > 0) {
        pos = prev_cp(ed, pos);
        if (pos == 0 || !zero_width_at(ed, pos, &n))
            break;
    }
    return pos;
}

size_t kart__str_width(const char *s, size_t n)
{
    size_t w = 0, i = 0;
    while (i < n) {
        uint32_t cp;
        size_t l = kart__utf8_decode(s + i, n - i, &cp);
        int cw = cp == (uint32_t)-1 ? 4 : kart__wcwidth(cp);
        w += cw < 0 ? 2 : (size_t)cw;
        i += l;
    }
    return w;
}

/* ---- glyphs: what one character of the line shows as ---- */

typedef struct glyph {
    char text[16];
    uint8_t tlen;
    uint8_t width;
    bool ascii; /* one column per byte of text: may split over rows */
} glyph;

#define TABSTOP 8

static size_t glyph_at(const char *s, size_t n, uint32_t col, glyph *g)
{
    unsigned char b0 = (unsigned char)s[0];
    if (b0 >= 0x20 && b0 < 0x7f) {
        /* printable ASCII, most of any line: what the general path below
         * makes of it, without the decoder and the width table */
        g->text[0] = (char)b0;
        g->tlen = g->width = 1;
        g->ascii = false;
        return 1;
    }
    uint32_t cp;
    size_t l = kart__utf8_decode(s, n, &cp);
    g->ascii = false;
    if (cp == (uint32_t)-1) {
        unsigned char b = (unsigned char)s[0];
        g->text[0] = '\\';
        g->text[1] = (char)('0' + (b >> 6));
        g->text[2] = (char)('0' + ((b >> 3) & 7));
        g->text[3] = (char)('0' + (b & 7));
        g->tlen = g->width = 4;
        g->ascii = true;
        return l;
    }
    if (cp == '\t') {
        uint32_t w = TABSTOP - col % TABSTOP;
        memset(g->text, ' ', w);
        g->tlen = g->width = (uint8_t)w;
        g->ascii = true;
        return l;
    }
    if (cp < 0x20 || cp == 0x7f) {
        g->text[0] = '^';
        g->text[1] = cp == 0x7f ? '?' : (char)(cp + 64);
        g->tlen = g->width = 2;
        g->ascii = true;
        return l;
    }
    if (cp >= 0x80 && cp < 0xa0) {
        /* C1 controls: each byte as \ooo */
        g->tlen = 0;
        for (size_t i = 0; i < l; i++) {
            unsigned char b = (unsigned char)s[i];
            char *t = g->text + g->tlen;
            t[0] = '\\';
            t[1] = (char)('0' + (b >> 6));
            t[2] = (char)('0' + ((b >> 3) & 7));
            t[3] = (char)('0' + (b & 7));
            g->tlen += 4;
        }
        g->width = g->tlen;
        g->ascii = true;
        return l;
    }
    memcpy(g->text, s, l);
    g->tlen = (uint8_t)l;
    int w = kart__wcwidth(cp);
    g->width = (uint8_t)(w < 0 ? 1 : w);
    return l;
}

/* Where a glyph of the given shape starts from state st (the end of what
 * precedes it), and the state after it. */
static kart__pos place(kart__pos st, const glyph *g, uint32_t cols, kart__pos *after)
{
    kart__pos at = st;
    if (g->width == 0) {
        *after = st;
        return at;
    }
    if (g->ascii) {
        if (at.col >= cols) {
            at.row++;
            at.col = 0;
        }
        /* each byte one column, wrapping */
        kart__pos e = at;
        uint32_t left = g->width;
        while (left > 0) {
            if (e.col >= cols) {
                e.row++;
                e.col = 0;
            }
            uint32_t room = cols - e.col;
            uint32_t take = left < room ? left : room;
            e.col += take;
            left -= take;
        }
        *after = e;
        return at;
    }
    if (at.col + g->width > cols && at.col > 0) {
        at.row++;
        at.col = 0;
    }
    after->row = at.row;
    after->col = at.col + g->width;
    return at;
}

static bool horizontal(const kart_line *ed)
{
    return ed->set.horizontal_scroll_mode;
}

/* The width layout uses: the screen's, or "no limit" in horizontal mode. */
static uint32_t lay_cols(const kart_line *ed)
{
    if (horizontal(ed))
        return UINT32_MAX / 2;
    return ed->cols ? ed->cols : 80;
}

static int pos_cmp(kart__pos a, kart__pos b)
{
    if (a.row != b.row)
        return a.row < b.row ? -1 : 1;
    if (a.col != b.col)
        return a.col < b.col ? -1 : 1;
    return 0;
}

/* ---- the prompt ---- */

static const char *shown_prompt(const kart_line *ed, size_t *len)
{
    const char *p = ed->prompt ? ed->prompt : "";
    *len = strlen(p);
    return p;
}

/* The length of an invisible sequence at s (ESC sequences, \001..\002);
 * 0 if s starts none. */
static size_t invisible_len(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    if (s[0] == '\001') {
        size_t i = 1;
        while (i < n && s[i] != '\002')
            i++;
        return i < n ? i + 1 : n;
    }
    if (s[0] != '\033')
        return 0;
    if (n == 1)
        return 1;
    if (s[1] == '[') {
        size_t i = 2;
        while (i < n && !((unsigned char)s[i] >= 0x40 && (unsigned char)s[i] <= 0x7e))
            i++;
        return i < n ? i + 1 : n;
    }
    if (s[1] == ']') {
        size_t i = 2;
        while (i < n) {
            if (s[i] == '\a')
                return i + 1;
            if (s[i] == '\033' && i + 1 < n && s[i + 1] == '\\')
                return i + 2;
            i++;
        }
        return n;
    }
    return 2;
}

/* Walks the prompt (its part [from, len) when drawn from st): emits what
 * to write into out (NULL: only lays out) and returns the end state. With
 * ed->mode_prompt set, the last line of the prompt is replaced by it. */
static kart__pos prompt_walk(kart_line *ed, kart__lbuf *out, bool visible_only, kart__pos st,
                             uint32_t cols, uint32_t *last_line_row)
{
    size_t n;
    const char *p = shown_prompt(ed, &n);
    size_t last_nl = SIZE_MAX;
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\n')
            last_nl = i;
    const char *parts[2];
    size_t lens[2];
    int nparts;
    if (ed->mode_prompt) {
        parts[0] = p;
        lens[0] = last_nl == SIZE_MAX ? 0 : last_nl + 1;
        parts[1] = ed->mode_prompt;
        lens[1] = strlen(ed->mode_prompt);
        nparts = 2;
    } else {
        parts[0] = p;
        lens[0] = n;
        nparts = 1;
    }
    *last_line_row = st.row;
    for (int k = 0; k < nparts; k++) {
        const char *s = parts[k];
        size_t len = lens[k];
        size_t i = 0;
        while (i < len) {
            size_t inv = invisible_len(s + i, len - i);
            if (inv) {
                if (out && !visible_only) {
                    if (s[i] == '\001') {
                        size_t body = inv - 1;
                        if (body > 0 && s[i + inv - 1] == '\002')
                            body--;
                        kart__lbuf_add(out, s + i + 1, body);
                    } else {
                        kart__lbuf_add(out, s + i, inv);
                    }
                }
                i += inv;
                continue;
            }
            if (s[i] == '\n') {
                if (out)
                    kart__lbuf_add(out, "\r\n", 2);
                st.row++;
                st.col = 0;
                *last_line_row = st.row;
                i++;
                continue;
            }
            if (s[i] == '\r') {
                if (out)
                    kart__lbuf_add(out, "\r", 1);
                st.col = 0;
                i++;
                continue;
            }
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
                /* other controls: written, no width */
                if (out && !visible_only)
                    kart__lbuf_add(out, s + i, 1);
                i++;
                continue;
            }
            glyph g;
            size_t l = glyph_at(s + i, len - i, st.col, &g);
            kart__pos after;
            kart__pos at = place(st, &g, cols, &after);
            if (out) {
                /* the terminal wraps a wide character that does not fit by
                 * itself; pad so that what is under the gap is cleared */
                if (at.row > st.row && st.col < cols && !horizontal(ed))
                    for (uint32_t c = st.col; c < cols; c++)
                        kart__lbuf_add(out, " ", 1);
                kart__lbuf_add(out, g.ascii ? g.text : s + i, g.ascii ? g.tlen : l);
            }
            st = after;
            i += l;
        }
    }
    return st;
}

/* ---- the layout of the line ---- */

static int lay_reserve(kart_line *ed)
{
    kart__display *d = &ed->d;
    size_t need = ed->line.len + 1;
    if (d->lpos_cap < need) {
        size_t cap = d->lpos_cap ? d->lpos_cap : 256;
        while (cap < need)
            cap *= 2;
        kart__pos *v = realloc(d->lpos, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        d->lpos = v;
        d->lpos_cap = cap;
    }
    return 0;
}

/* Lays the line out through byte upto. false: out of memory (the display
 * then falls back to a full redraw next time). */
static bool layout(kart_line *ed, size_t upto)
{
    kart__display *d = &ed->d;
    uint32_t cols = lay_cols(ed);
    if (d->cols != ed->cols || d->rows != ed->rows) {
        d->cols = ed->cols;
        d->rows = ed->rows;
        d->lay_valid = SIZE_MAX;
    }
    if (lay_reserve(ed) < 0)
        return false;
    if (upto > ed->line.len)
        upto = ed->line.len;
    if (d->lay_valid == SIZE_MAX) {
        uint32_t llr;
        kart__pos st = {0, 0};
        d->pend = prompt_walk(ed, NULL, false, st, cols, &llr);
        d->pre_rows = llr;
        d->lpos[0] = d->pend;
        d->lay_valid = 0;
    }
    if (d->lay_valid > ed->line.len)
        d->lay_valid = ed->line.len;
    size_t i = d->lay_valid;
    kart__pos st = d->lpos[i];
    const char *s = ed->line.p;
    size_t n = ed->line.len;
    while (i < upto) {
        glyph g;
        size_t l = glyph_at(s + i, n - i, st.col, &g);
        kart__pos after;
        place(st, &g, cols, &after);
        for (size_t k = 1; k < l; k++)
            d->lpos[i + k] = st;
        i += l;
        st = after;
        d->lpos[i] = st;
    }
    if (i > d->lay_valid)
        d->lay_valid = i;
    return true;
}

static kart__pos norm_end(kart__pos p, uint32_t cols)
{
    if (p.col >= cols) {
        p.row++;
        p.col = 0;
    }
    return p;
}

kart__pos kart__display_pos(kart_line *ed, size_t pos)
{
    uint32_t cols = lay_cols(ed);
    if (pos > ed->line.len)
        pos = ed->line.len;
    if (!layout(ed, pos)) {
        kart__pos z = {0, 0};
        return z;
    }
    kart__pos st = ed->d.lpos[pos];
    if (pos == ed->line.len)
        return norm_end(st, cols);
    glyph g;
    glyph_at(ed->line.p + pos, ed->line.len - pos, st.col, &g);
    kart__pos after;
    kart__pos at = place(st, &g, cols, &after);
    return norm_end(at, cols);
}

size_t kart__display_offset_at(kart_line *ed, uint32_t row, uint32_t col)
{
    if (!layout(ed, ed->line.len))
        return 0;
    /* binary search: the last char start whose position <= (row, col) */
    size_t lo = 0, hi = ed->line.len;
    kart__pos want = {row, col};
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        while (mid > lo && mid < ed->line.len && (ed->line.p[mid] & 0xc0) == 0x80)
            mid--;
        if (mid == lo) {
            /* no boundary in (lo, hi]: step forward */
            size_t nx = kart__next_char(ed, lo);
            if (nx > hi)
                break;
            if (pos_cmp(kart__display_pos(ed, nx), want) <= 0)
                lo = nx;
            else
                break;
            continue;
        }
        if (pos_cmp(kart__display_pos(ed, mid), want) <= 0)
            lo = mid;
        else
            hi = mid - 1;
    }
    /* land on a character boundary (not inside marks) */
    while (lo > 0 && lo < ed->line.len) {
        size_t n;
        if (!zero_width_at(ed, lo, &n))
            break;
        lo = prev_cp(ed, lo);
    }
    return lo;
}

/* ---- cursor movement and output ---- */

static void csi(kart_line *ed, uint32_t n, char what)
{
    /* By hand: snprintf was a tenth of a key's user time (a move per
     * key). "\033[" n what, n left out when 1. */
    char b[16], digits[10];
    size_t l = 0, k = 0;
    b[l++] = '\033';
    b[l++] = '[';
    if (n != 1) {
        do {
            digits[k++] = (char)('0' + n % 10);
            n /= 10;
        } while (n);
        while (k)
            b[l++] = digits[--k];
    }
    b[l++] = what;
    kart__out(ed, b, l);
}

static uint32_t scr_cols(const kart_line *ed)
{
    return ed->cols ? ed->cols : 80;
}

/* The highest row that is still on the screen. */
static uint32_t top_visible(const kart_line *ed)
{
    uint32_t rows = ed->rows ? ed->rows : 24;
    return ed->d.maxrow >= rows ? ed->d.maxrow - (rows - 1) : 0;
}

static void move_to(kart_line *ed, uint32_t r, uint32_t c)
{
    kart__display *d = &ed->d;
    uint32_t cols = scr_cols(ed);
    if (r < top_visible(ed))
        r = top_visible(ed);
    if (c >= cols)
        c = cols - 1;
    if (d->ccol >= cols) {
        /* leave the pending wrap ("\r\n" below does it by itself) */
        if (!(r > d->crow && d->maxrow <= d->crow))
            kart__out(ed, "\r", 1);
        d->ccol = 0;
    }
    if (r < d->crow) {
        csi(ed, d->crow - r, 'A');
    } else if (r > d->crow) {
        if (r <= d->maxrow) {
            csi(ed, r - d->crow, 'B');
        } else {
            if (d->maxrow > d->crow)
                csi(ed, d->maxrow - d->crow, 'B');
            for (uint32_t k = d->maxrow; k < r; k++)
                kart__out(ed, "\r\n", 2);
            d->ccol = 0;
            d->maxrow = r;
        }
    }
    d->crow = r;
    if (c != d->ccol) {
        if (c == 0)
            kart__out(ed, "\r", 1);
        else if (c > d->ccol)
            csi(ed, c - d->ccol, 'C');
        else
            csi(ed, d->ccol - c, 'D');
        d->ccol = c;
    }
}

/* Writes one glyph at the cursor; tracks the cursor as the terminal
 * moves it (autowrap with a pending wrap at the right margin). */
static void put_glyph(kart_line *ed, const char *bytes, size_t n, const glyph *g)
{
    kart__display *d = &ed->d;
    uint32_t cols = scr_cols(ed);
    if (g->width == 0) {
        kart__out(ed, bytes, n);
        return;
    }
    if (g->ascii) {
        for (size_t i = 0; i < g->tlen; i++) {
            if (d->ccol >= cols) {
                d->crow++;
                d->ccol = 0;
            }
            kart__out(ed, g->text + i, 1);
            d->ccol++;
            if (d->crow > d->maxrow)
                d->maxrow = d->crow;
        }
        return;
    }
    if (d->ccol >= cols) {
        d->crow++;
        d->ccol = 0;
    }
    kart__out(ed, bytes, n);
    d->ccol += g->width;
    if (d->ccol > cols)
        d->ccol = cols;
    if (d->crow > d->maxrow)
        d->maxrow = d->crow;
}

void kart__display_dirty(kart_line *ed, size_t pos)
{
    kart__display *d = &ed->d;
    if (pos < d->dirty) {
        d->dirty = pos;
        d->dirty_back = false;
    }
    /* a combining mark now at pos belongs to the cell before it */
    size_t n;
    if (pos == d->dirty && pos < ed->line.len && zero_width_at(ed, pos, &n))
        d->dirty_back = true;
    if (d->lay_valid != SIZE_MAX && pos < d->lay_valid)
        d->lay_valid = pos;
}

void kart__display_dirty_mark(kart_line *ed, size_t pos)
{
    kart__display_dirty(ed, pos);
    if (pos == ed->d.dirty)
        ed->d.dirty_back = true;
}

void kart__display_invalidate(kart_line *ed)
{
    ed->d.lay_valid = SIZE_MAX;
    ed->d.full = true;
}

void kart__display_reset(kart_line *ed)
{
    kart__display *d = &ed->d;
    d->shown = false;
    d->full = true;
    d->crow = d->ccol = d->maxrow = 0;
    d->old_end.row = d->old_end.col = 0;
    d->hoff = d->old_hoff = 0;
    d->dirty = SIZE_MAX;
    d->dirty_back = false;
    d->lay_valid = SIZE_MAX;
}

/* ---- wrap mode ---- */

static void draw_prompt(kart_line *ed)
{
    kart__display *d = &ed->d;
    uint32_t llr;
    kart__pos st = {0, 0};
    kart__pos end = prompt_walk(ed, &ed->out, false, st, scr_cols(ed), &llr);
    d->crow = end.row;
    d->ccol = end.col;
    if (d->crow > d->maxrow)
        d->maxrow = d->crow;
}

static void refresh_wrap(kart_line *ed)
{
    kart__display *d = &ed->d;
    uint32_t cols = scr_cols(ed);
    size_t len = ed->line.len;
    if (!layout(ed, len)) {
        d->full = true;
        return;
    }
    size_t start;
    if (d->shown && !d->full && d->dirty != SIZE_MAX) {
        /* a change above the screen's top (a line taller than the
         * screen): draw it all again from the top row */
        size_t s0 = d->dirty > len ? len : d->dirty;
        if (s0 > 0)
            s0 = kart__prev_char(ed, s0);
        if (d->lpos[s0].row < top_visible(ed))
            d->full = true;
    }
    if (!d->shown || d->full) {
        if (d->shown) {
            move_to(ed, 0, 0);
            kart__out(ed, "\r\033[J", 4);
        }
        /* rows count from here: a prompt that scrolled away starts
         * again at the top */
        d->crow = d->ccol = d->maxrow = 0;
        draw_prompt(ed);
        d->old_end = d->pend;
        d->shown = true;
        d->full = false;
        start = 0;
    } else {
        start = d->dirty;
    }
    if (start != SIZE_MAX) {
        if (start > len)
            start = len;
        if (start > 0 && d->dirty_back)
            start = kart__prev_char(ed, start);
        kart__pos st = norm_end(d->lpos[start], cols);
        if (st.row != d->crow || st.col != d->ccol)
            move_to(ed, st.row, st.col);
        size_t i = start;
        while (i < len) {
            glyph g;
            kart__pos before = d->lpos[i];
            size_t l = glyph_at(ed->line.p + i, len - i, before.col, &g);
            kart__pos after;
            kart__pos at = place(before, &g, cols, &after);
            if (at.row > d->crow && d->ccol < cols) {
                /* a wide character that does not fit: blank the rest */
                while (d->ccol < cols) {
                    kart__out(ed, " ", 1);
                    d->ccol++;
                }
            }
            put_glyph(ed, ed->line.p + i, l, &g);
            i += l;
        }
        kart__pos end = d->lpos[len];
        if (pos_cmp(d->old_end, end) > 0) {
            if (d->ccol >= cols) {
                if (d->old_end.row > d->crow && d->maxrow > d->crow) {
                    kart__out(ed, "\r\033[B\033[J", 7);
                    d->crow++;
                    d->ccol = 0;
                }
            } else {
                kart__out(ed, "\033[J", 3);
            }
        }
        d->old_end = end;
    }
    d->dirty = SIZE_MAX;
    d->dirty_back = false;
    kart__pos cur = kart__display_pos(ed, ed->point);
    move_to(ed, cur.row, cur.col);
}

/* ---- horizontal mode ---- */

static void refresh_horizontal(kart_line *ed)
{
    kart__display *d = &ed->d;
    uint32_t cols = scr_cols(ed);
    uint32_t W = cols > 1 ? cols - 1 : 1;
    size_t len = ed->line.len;
    if (!layout(ed, len)) {
        d->full = true;
        return;
    }
    uint32_t row = d->pre_rows;
    uint32_t pcol = d->pend.col; /* prompt's last line width */
    kart__pos cur = kart__display_pos(ed, ed->point);
    size_t c = cur.col;
    size_t hoff = d->hoff;
    if (c < hoff + (hoff ? 1 : 0) || c >= hoff + W) {
        hoff = c > W / 2 ? c - W / 2 : 0;
    }
    size_t endcol = d->lpos[len].col;
    if (endcol < W)
        hoff = 0;
    bool full = !d->shown || d->full || hoff != d->old_hoff;
    size_t from_col;
    if (full) {
        if (d->shown) {
            move_to(ed, 0, 0);
            kart__out(ed, "\r\033[J", 4);
        } else {
            d->crow = d->ccol = d->maxrow = 0;
        }
        /* the prompt's lines above, then the last line's start */
        if (hoff == 0) {
            draw_prompt(ed);
        } else {
            /* the prompt's escapes (colours) without its text */
            uint32_t llr;
            kart__pos st = {0, 0};
            kart__lbuf tmp = {0};
            prompt_walk(ed, &tmp, false, st, UINT32_MAX / 2, &llr);
            kart__lbuf_free(&tmp);
            size_t n;
            const char *p = shown_prompt(ed, &n);
            size_t i = 0;
            uint32_t r = 0;
            while (i < n) {
                size_t inv = invisible_len(p + i, n - i);
                if (inv) {
                    if (p[i] != '\001')
                        kart__out(ed, p + i, inv);
                    else if (inv > 2)
                        kart__out(ed, p + i + 1, inv - 2);
                    i += inv;
                } else {
                    if (p[i] == '\n' && r < row) {
                        kart__out(ed, "\r\n", 2);
                        r++;
                    }
                    i++;
                }
            }
            d->crow = row;
            d->ccol = 0;
            if (row > d->maxrow)
                d->maxrow = row;
            kart__out(ed, "<", 1);
            d->ccol = 1;
        }
        from_col = hoff == 0 ? pcol : hoff + 1;
        if (from_col < pcol)
            from_col = pcol;
        d->shown = true;
        d->full = false;
    } else {
        if (d->dirty == SIZE_MAX) {
            move_to(ed, row, (uint32_t)(c - hoff));
            return;
        }
        size_t s = d->dirty > ed->line.len ? ed->line.len : d->dirty;
        if (s > 0 && d->dirty_back)
            s = kart__prev_char(ed, s);
        from_col = d->lpos[s].col;
        size_t lo = hoff == 0 ? pcol : hoff + 1;
        if (from_col < lo)
            from_col = lo;
        if (from_col >= hoff + W)
            from_col = hoff + W;
    }
    if (from_col < hoff + W)
        move_to(ed, row, (uint32_t)(from_col - hoff));
    /* the characters from from_col to the window's end */
    size_t i = kart__display_offset_at(ed, row, (uint32_t)from_col);
    size_t wend = hoff + W;
    bool more = endcol > wend;
    size_t stop = more ? wend - 1 : wend;
    while (i < len) {
        kart__pos st = d->lpos[i];
        glyph g;
        size_t l = glyph_at(ed->line.p + i, len - i, st.col, &g);
        if (st.col >= stop)
            break;
        if (st.col + g.width > stop || st.col < from_col) {
            /* cut at an edge: what shows of it is blank */
            for (size_t k = st.col; k < st.col + g.width && k < stop; k++) {
                if (k >= from_col) {
                    kart__out(ed, g.ascii ? g.text + (k - st.col) : " ", 1);
                    d->ccol++;
                }
            }
        } else if (g.width == 0) {
            if (st.col > from_col)
                kart__out(ed, ed->line.p + i, l);
        } else {
            kart__out(ed, g.ascii ? g.text : ed->line.p + i, g.ascii ? g.tlen : l);
            d->ccol += g.width;
        }
        i += l;
    }
    /* clear what is left of the old text in the window */
    size_t new_vis_end = endcol < stop ? endcol : stop;
    size_t old_vis_end = d->old_end.col < stop ? d->old_end.col : stop;
    if (full || old_vis_end > new_vis_end || more || d->old_more)
        kart__out(ed, "\033[K", 3);
    d->old_more = more;
    if (more) {
        move_to(ed, row, (uint32_t)(stop - hoff));
        kart__out(ed, ">", 1);
        d->ccol++;
    }
    d->old_hoff = d->hoff = hoff;
    d->old_end = d->lpos[len];
    d->dirty = SIZE_MAX;
    move_to(ed, row, (uint32_t)(c - hoff));
}

void kart__display_refresh(kart_line *ed)
{
    if (!ed->terminal || ed->hidden || ed->list_state)
        return;
    if (ed->d.shown && !ed->d.full && ed->d.dirty == SIZE_MAX) {
        /* only the cursor may have moved */
        if (horizontal(ed)) {
            refresh_horizontal(ed);
            return;
        }
        kart__pos cur = kart__display_pos(ed, ed->point);
        move_to(ed, cur.row, cur.col);
        return;
    }
    if (horizontal(ed))
        refresh_horizontal(ed);
    else
        refresh_wrap(ed);
}

void kart__display_finish(kart_line *ed, bool newline)
{
    kart__display *d = &ed->d;
    if (!ed->terminal || !d->shown)
        return;
    if (horizontal(ed)) {
        move_to(ed, d->pre_rows, d->ccol < scr_cols(ed) ? d->ccol : 0);
        if (d->maxrow > d->crow)
            move_to(ed, d->maxrow, 0);
    } else {
        kart__pos end = d->old_end;
        uint32_t cols = scr_cols(ed);
        if (end.col >= cols) {
            /* the text ends at the margin: the next row is the new one */
            end.row++;
            end.col = 0;
        }
        move_to(ed, end.row, end.col);
    }
    if (newline)
        kart__out(ed, "\r\n", 2);
    kart__display_reset(ed);
}

void kart__display_move_end(kart_line *ed)
{
    kart__display *d = &ed->d;
    if (!ed->terminal || !d->shown)
        return;
    if (horizontal(ed)) {
        if (d->maxrow > d->crow)
            move_to(ed, d->maxrow, 0);
        return;
    }
    kart__pos end = norm_end(d->old_end, scr_cols(ed));
    move_to(ed, end.row, end.col);
}

void kart__display_clear(kart_line *ed)
{
    kart__display *d = &ed->d;
    if (!ed->terminal || !d->shown)
        return;
    move_to(ed, 0, 0);
    kart__out(ed, "\r\033[J", 4);
    kart__display_reset(ed);
}

void kart__display_resize(kart_line *ed)
{
    kart__display *d = &ed->d;
    if (!ed->terminal)
        return;
    if (!d->shown) {
        kart__display_invalidate(ed);
        return;
    }
    /* Terminals rewrap (reflow) wrapped rows on a resize: where the
     * cursor is now, relative to the prompt's start, is where the new
     * layout puts it. */
    d->lay_valid = SIZE_MAX;
    d->cols = ed->cols;
    d->rows = ed->rows;
    kart__pos cur = kart__display_pos(ed, ed->point);
    if (horizontal(ed))
        cur.row = d->pre_rows;
    d->crow = cur.row;
    d->ccol = horizontal(ed) ? 0 : cur.col;
    d->maxrow = cur.row;
    d->full = true;
    d->old_hoff = SIZE_MAX;
}

void kart__display_free(kart__display *d)
{
    free(d->lpos);
    d->lpos = NULL;
    d->lpos_cap = 0;
}
