/*
 * examples/http_parse.h — a small, strict HTTP/1.x request-head parser for
 * examples/http-server.c.
 *
 * Why a header of its own: the parser is the part of a server that sees
 * hostile bytes, so it is kept apart from the I/O code where it can be
 * fuzzed alone (fuzz/fuzz_http.c) and tested without a socket. It is
 * header-only so that the example stays one program built from public
 * headers, as a project outside kart would build it.
 *
 * It parses one request head from the start of a buffer without copying
 * and without allocating: the results point into the buffer. It is
 * stateless, so a head that arrives in pieces is parsed again from its
 * start once more bytes are in; heads are bounded (max_head), which bounds
 * that rework. What it accepts (RFC 9112, strictly): a request line
 * "METHOD SP target SP HTTP/1.x CRLF" (a bare LF is accepted as a line end,
 * as the RFC allows), header fields "name: value" with token names and
 * visible-character values, and an empty line. It understands Connection
 * (close, keep-alive), Content-Length (one value, or repeated equal ones)
 * and rejects Transfer-Encoding (no chunked bodies here) and obsolete line
 * folding. Anything else is a bad request.
 */
#ifndef KART_EXAMPLES_HTTP_PARSE_H
#define KART_EXAMPLES_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct http_request {
    const char *method; /* points into the buffer; not NUL-terminated */
    size_t method_len;
    const char *target;
    size_t target_len;
    int minor;               /* HTTP/1.<minor>: 0 or 1 */
    bool keep_alive;         /* after the Connection header and the version */
    uint64_t content_length; /* body bytes that follow the head */
    size_t head_len;         /* bytes of the head, its final empty line included */
} http_request;

enum {
    HTTP_INCOMPLETE = 0, /* the head is not complete yet: read more */
    HTTP_BAD = -1,       /* malformed: answer 400 and close */
    HTTP_TOO_LARGE = -2, /* no complete head within max_head bytes: 431 */
};

/* RFC 9110 tchar: the characters of a token (method, header name). */
static inline bool http_is_tchar(unsigned char c)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != 0 && memchr(extra, c, sizeof(extra) - 1) != NULL;
}

/* Field-value characters: visible ASCII, obs-text, space and tab. */
static inline bool http_is_vchar(unsigned char c)
{
    return (c >= 0x20 && c != 0x7f) || c == '\t';
}

static inline bool http_ieq(const char *a, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        if (c != (unsigned char)lit[i])
            return false;
    }
    return true;
}

/* Finds the end of the line starting at p: returns the index of its LF
 * within [p, end), or -1 when there is none yet. *len gets the length of
 * the line without its CR LF (or bare LF). */
static inline ptrdiff_t http_line(const char *p, const char *end, size_t *len)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    if (!lf)
        return -1;
    *len = (size_t)(lf - p);
    if (*len > 0 && lf[-1] == '\r')
        (*len)--;
    return lf - p;
}

/* Applies one Connection header value, a comma-separated token list. */
static inline void http_connection(const char *v, size_t n, int *conn)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (http_ieq(v + s, i - s, "close"))
            *conn = 1;
        else if (http_ieq(v + s, i - s, "keep-alive") && *conn != 1)
            *conn = 2;
    }
}

/*
 * Parses the request head at buf[0, len). Returns the length of the head
 * (> 0) with *r filled in, HTTP_INCOMPLETE when more bytes are needed,
 * HTTP_BAD, or HTTP_TOO_LARGE when max_head bytes hold no complete head.
 * The body (r->content_length bytes) follows the head and is the caller's.
 */
static inline int http_parse_request(const char *buf, size_t len, size_t max_head, http_request *r)
{
    const char *p = buf, *end = buf + (len < max_head ? len : max_head);
    size_t n;
    ptrdiff_t lf = http_line(p, end, &n);
    if (lf < 0) {
        /* Reject a bad request line early rather than waiting for its
         * end: a stream of garbage gets its 400 at once. */
        for (const char *q = p; q < end && *q != ' '; q++)
            if (!http_is_tchar((unsigned char)*q))
                return HTTP_BAD;
        return len >= max_head ? HTTP_TOO_LARGE : HTTP_INCOMPLETE;
    }
    /* Request line: method SP target SP HTTP/1.d */
    const char *line = p, *le = p + n;
    const char *q = line;
    while (q < le && http_is_tchar((unsigned char)*q))
        q++;
    if (q == line || q >= le || *q != ' ')
        return HTTP_BAD;
    *r = (http_request){.method = line, .method_len = (size_t)(q - line)};
    const char *t = ++q;
    while (q < le && (unsigned char)*q > 0x20 && (unsigned char)*q < 0x7f)
        q++;
    if (q == t || q >= le || *q != ' ')
        return HTTP_BAD;
    r->target = t;
    r->target_len = (size_t)(q - t);
    q++;
    if (le - q != 8 || memcmp(q, "HTTP/1.", 7) != 0 || (q[7] != '0' && q[7] != '1'))
        return HTTP_BAD;
    r->minor = q[7] - '0';
    p += lf + 1;

    int conn = 0; /* 0: version default, 1: close, 2: keep-alive */
    bool have_length = false;
    for (;;) {
        lf = http_line(p, end, &n);
        if (lf < 0)
            return len >= max_head ? HTTP_TOO_LARGE : HTTP_INCOMPLETE;
        if (n == 0) {
            p += lf + 1;
            break;
        }
        const char *name = p, *le2 = p + n;
        q = p;
        while (q < le2 && http_is_tchar((unsigned char)*q))
            q++;
        /* No name, no colon, or whitespace before it (or a folded line). */
        if (q == name || q >= le2 || *q != ':')
            return HTTP_BAD;
        size_t name_len = (size_t)(q - name);
        q++;
        while (q < le2 && (*q == ' ' || *q == '\t'))
            q++;
        const char *v = q;
        for (; q < le2; q++)
            if (!http_is_vchar((unsigned char)*q))
                return HTTP_BAD;
        while (q > v && (q[-1] == ' ' || q[-1] == '\t'))
            q--;
        size_t vlen = (size_t)(q - v);
        if (http_ieq(name, name_len, "connection")) {
            http_connection(v, vlen, &conn);
        } else if (http_ieq(name, name_len, "content-length")) {
            if (vlen == 0 || vlen > 15)
                return HTTP_BAD;
            uint64_t cl = 0;
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return HTTP_BAD;
                cl = cl * 10 + (uint64_t)(v[i] - '0');
            }
            if (have_length && cl != r->content_length)
                return HTTP_BAD;
            have_length = true;
            r->content_length = cl;
        } else if (http_ieq(name, name_len, "transfer-encoding")) {
            return HTTP_BAD;
        }
        p += lf + 1;
    }
    r->keep_alive = conn == 2 || (conn == 0 && r->minor == 1);
    r->head_len = (size_t)(p - buf);
    return (int)r->head_len;
}

#endif
