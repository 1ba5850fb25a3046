
/*
 * Unit tests of ngx_http_supportdesk_validate.c: every SPEC section 4 rule
 * at its boundaries, the body parser and the externalId decoder.
 *
 * Inputs are copied into buffers of their exact size, so that AddressSanitizer
 * catches any read past the end of a string.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_supportdesk_validate.h"

#include "tap.h"


#define MAX_V  NGX_HTTP_SUPPORTDESK_MAX_VIOLATIONS


static u_char *alloc(size_t len);
static ngx_str_t *text(const char *s);
static u_char *exact(const char *s, size_t len);
static char *repeat(char *p, const char *unit, size_t n);
static char *nest(char *p, const char *open, const char *inner,
    const char *close, size_t n);
static const char *email(const char *s);
static const char *email_n(const char *s, size_t len);
static const char *name(const char *s, ngx_str_t *trimmed);
static const char *name_n(const char *s, size_t len, ngx_str_t *trimmed);
static const char *phone(const char *s);
static const char *url(const char *s);
static const char *parse(const char *s, size_t len, int *code);
static const char *ext(const char *raw, char *decoded);
static ngx_int_t validate(const char *json, ngx_uint_t flags,
    json_t **root, ngx_http_supportdesk_customer_input_t *in,
    ngx_http_supportdesk_report_t *rep);
static const char *violation(ngx_http_supportdesk_report_t *rep,
    const char *field);
static void field_is(const char *json, ngx_uint_t flags, const char *field,
    const char *want, const char *desc);

static void test_email(void);
static void test_name(void);
static void test_phone(void);
static void test_avatar_url(void);
static void test_metadata(void);
static void test_customer(void);
static void test_flags(void);
static void test_report(void);
static void test_parse(void);
static void test_external_id(void);
static void test_utf8_quote(void);
static void test_raw_json(void);
static void test_parse_batch(void);
static const char *compact(const char *json);
static const char *member(const char *json, const char *name);
static const char *batch(const char *json, char *array, int *elements);


/* scratch space for the long strings and documents built below */
static char  s1[80000];
static char  s2[80000];


int
main(void)
{
    test_email();
    test_name();
    test_phone();
    test_avatar_url();
    test_metadata();
    test_customer();
    test_flags();
    test_report();
    test_parse();
    test_external_id();
    test_utf8_quote();
    test_raw_json();
    test_parse_batch();

    return tap_done();
}


static void
test_email(void)
{
    char  *p;

    tap_is(email("john@acme.com"), NULL, "email: plain address");
    tap_is(email("John.Doe+tag@mail.acme.co.uk"), NULL,
           "email: dots and plus");
    tap_is(email("a@b@acme.com"), NULL, "email: split at the last '@'");
    tap_is(email("j\xc3\xb6rg@m\xc3\xbcller.de"), NULL,
           "email: UTF-8 local part and domain");

    tap_is(email(""), "must be a valid email address", "email: empty");
    tap_is(email("john.acme.com"), "must be a valid email address",
           "email: no '@'");
    tap_is(email("@acme.com"), "must be a valid email address",
           "email: empty local part");
    tap_is(email("john@"), "must be a valid email address",
           "email: empty domain");
    tap_is(email("john@acme"), "must be a valid email address",
           "email: domain without a dot");
    tap_is(email("john@.acme.com"), "must be a valid email address",
           "email: domain starts with '.'");
    tap_is(email("john@acme.com."), "must be a valid email address",
           "email: domain ends with '.'");
    tap_is(email("john@acme..com"), "must be a valid email address",
           "email: empty domain label");
    tap_is(email("john@acme.com@x"), "must be a valid email address",
           "email: last '@' leaves a domain without a dot");
    tap_is(email("john@."), "must be a valid email address",
           "email: domain is a lone dot");

    /* white space and control characters, ASCII and Unicode */
    tap_is(email("jo hn@acme.com"),
           "must not contain white space or control characters",
           "email: inner space");
    tap_is(email(" john@acme.com"),
           "must not contain white space or control characters",
           "email: leading space (not trimmed)");
    tap_is(email("john@acme.com\n"),
           "must not contain white space or control characters",
           "email: trailing newline");
    tap_is(email("john\t@acme.com"),
           "must not contain white space or control characters",
           "email: tab");
    tap_is(email("john\x0b@acme.com"),
           "must not contain white space or control characters",
           "email: vertical tab");
    tap_is(email("john\x01@acme.com"),
           "must not contain white space or control characters",
           "email: control byte 0x01");
    tap_is(email("john\x7f@acme.com"),
           "must not contain white space or control characters",
           "email: DEL");
    tap_is(email_n("jo\0hn@acme.com", 14),
           "must not contain white space or control characters",
           "email: NUL byte");
    tap_is(email("john\xc2\x85@acme.com"),
           "must not contain white space or control characters",
           "email: U+0085 (C1 control)");
    tap_is(email("john\xc2\xa0@acme.com"),
           "must not contain white space or control characters",
           "email: U+00A0 no-break space");
    tap_is(email("john@acme\xe2\x80\xa8.com"),
           "must not contain white space or control characters",
           "email: U+2028 line separator");
    tap_is(email("john@acme\xe2\x80\xa9.com"),
           "must not contain white space or control characters",
           "email: U+2029 paragraph separator");
    tap_is(email("john\xe3\x80\x80@acme.com"),
           "must not contain white space or control characters",
           "email: U+3000 ideographic space");
    tap_is(email("john\xe2\x80\x80@acme.com"),
           "must not contain white space or control characters",
           "email: U+2000 en quad");
    tap_is(email("john\xe2\x80\x8a@acme.com"),
           "must not contain white space or control characters",
           "email: U+200A hair space");
    tap_is(email("\xef\xbb\xbfjohn@acme.com"),
           "must not contain white space or control characters",
           "email: U+FEFF byte order mark");
    tap_is(email("\xff@acme.com"), "must be valid UTF-8",
           "email: invalid UTF-8 (direct call)");

    /* length in code points: 254 pass, 255 fail */
    p = repeat(s1, "a", 254 - 12);
    repeat(p, "@example.com", 1);
    tap_is_int(strlen(s1), 254, "email: fixture is 254 ASCII characters");
    tap_is(email(s1), NULL, "email: 254 ASCII characters");

    p = repeat(s1, "a", 255 - 12);
    repeat(p, "@example.com", 1);
    tap_is(email(s1), "must be at most 254 characters",
           "email: 255 ASCII characters");

    p = repeat(s1, "\xc3\xa9", 250);
    repeat(p, "@\xc3\xa9.\xc3\xa9", 1);
    tap_is_int(strlen(s1), 506, "email: 252 two-byte + 2 ASCII = 506 bytes");
    tap_is(email(s1), NULL, "email: 254 two-byte characters");

    p = repeat(s1, "\xc3\xa9", 251);
    repeat(p, "@\xc3\xa9.\xc3\xa9", 1);
    tap_is(email(s1), "must be at most 254 characters",
           "email: 255 two-byte characters");

    p = repeat(s1, "\xf0\x9f\x98\x80", 249);
    repeat(p, "@x.co", 1);
    tap_is(email(s1), NULL, "email: 254 characters with 4-byte ones");

    p = repeat(s1, "\xf0\x9f\x98\x80", 250);
    repeat(p, "@x.co", 1);
    tap_is(email(s1), "must be at most 254 characters",
           "email: 255 characters with 4-byte ones");

    /* through the payload validator (jansson strings) */
    p = repeat(s2, "{\"email\":\"", 1);
    p = repeat(p, "\xc3\xa9", 250);
    repeat(p, "@\xc3\xa9.\xc3\xa9\"}", 1);
    field_is(s2, 0, "email", NULL, "payload: email of 254 two-byte chars");

    p = repeat(s2, "{\"email\":\"", 1);
    p = repeat(p, "\\u00e9", 251);
    repeat(p, "@x.co\"}", 1);
    field_is(s2, 0, "email", "must be at most 254 characters",
             "payload: email of 256 chars given as \\u escapes");

    field_is("{\"email\":null}", 0, "email", "cannot be null",
             "payload: email null");
    field_is("{\"email\":42}", 0, "email", "must be a string",
             "payload: email number");
    field_is("{\"email\":[\"a@b.co\"]}", 0, "email", "must be a string",
             "payload: email array");
    field_is("{\"email\":\"a\\u00a0b@c.de\"}", 0, "email",
             "must not contain white space or control characters",
             "payload: email with escaped U+00A0");
}


static void
test_name(void)
{
    char       *p;
    ngx_str_t   t;

    tap_is(name("John Doe", &t), NULL, "name: plain");

    tap_is(name("  \t John Doe \r\n\v\f ", &t), NULL,
           "name: surrounded by ASCII white space");
    tap_ok(t.len == 8 && memcmp(t.data, "John Doe", 8) == 0,
           "name: trimmed to 'John Doe'");

    tap_is(name("X", &t), NULL, "name: one character");
    tap_is(name("", &t), "must not be empty", "name: empty");
    tap_is(name(" \t\n ", &t), "must not be empty", "name: only white space");

    tap_is(name("\xc2\xa0John\xc2\xa0", &t), NULL,
           "name: no-break spaces are content, not trimmed");
    tap_is_int(t.len, 8, "name: U+00A0 kept");

    tap_is(name("Jo\nhn", &t), "must not contain control characters",
           "name: inner newline");
    tap_is(name("Jo\x01hn", &t), "must not contain control characters",
           "name: control byte 0x01");
    tap_is(name("Jo\x7fhn", &t), "must not contain control characters",
           "name: DEL");
    tap_is(name("Jo\xc2\x9fhn", &t), "must not contain control characters",
           "name: U+009F (C1 control)");
    tap_is(name_n("Jo\0hn", 5, &t), "must not contain control characters",
           "name: NUL byte");
    tap_is(name("\xc3", &t), "must be valid UTF-8",
           "name: truncated UTF-8 (direct call)");

    /* 255 pass, 256 fail, counted after trimming and in code points */
    repeat(s1, "n", 255);
    tap_is(name(s1, &t), NULL, "name: 255 characters");

    repeat(s1, "n", 256);
    tap_is(name(s1, &t), "must be at most 255 characters",
           "name: 256 characters");

    p = repeat(s1, " ", 10);
    p = repeat(p, "n", 255);
    repeat(p, "\t\n ", 5);
    tap_is(name(s1, &t), NULL, "name: 255 characters plus white space");
    tap_is_int(t.len, 255, "name: trimmed to 255");

    repeat(s1, "\xc3\xa9", 255);
    tap_is(name(s1, &t), NULL, "name: 255 two-byte characters");

    repeat(s1, "\xc3\xa9", 256);
    tap_is(name(s1, &t), "must be at most 255 characters",
           "name: 256 two-byte characters");

    repeat(s1, "\xe5\x90\x8d", 255);
    tap_is(name(s1, &t), NULL, "name: 255 three-byte characters");

    field_is("{\"name\":null}", 0, "name", "cannot be null",
             "payload: name null");
    field_is("{\"name\":true}", 0, "name", "must be a string",
             "payload: name boolean");
    field_is("{\"name\":{}}", 0, "name", "must be a string",
             "payload: name object");
    field_is("{\"name\":\"  \"}", 0, "name", "must not be empty",
             "payload: name of blanks");
}


static void
test_phone(void)
{
    const char  *only;

    only = "must contain only digits, spaces and + - ( ) .";

    tap_is(phone("+1 (555) 010-0199"), NULL, "phone: international");
    tap_is(phone("+44 20.7946.0958"), NULL, "phone: dots");
    tap_is(phone("7"), NULL, "phone: one digit");

    repeat(s1, "1", 32);
    tap_is(phone(s1), NULL, "phone: 32 characters");

    repeat(s1, "1", 33);
    tap_is(phone(s1), "must be at most 32 characters", "phone: 33 characters");

    repeat(s1, "\xef\xbc\x91", 33);
    tap_is(phone(s1), "must be at most 32 characters",
           "phone: 33 non-ASCII characters report the length");

    tap_is(phone(""), "must contain at least one digit", "phone: empty");
    tap_is(phone("+- () ."), "must contain at least one digit",
           "phone: only punctuation");
    tap_is(phone("555-CALL"), only, "phone: letters");
    tap_is(phone("555\t1234"), only, "phone: tab");
    tap_is(phone("555/1234"), only, "phone: slash");
    tap_is(phone("\xef\xbc\x95\xef\xbc\x95"), only,
           "phone: full-width digits");
    tap_is(phone("\xe2\x80\x8b" "5"), only, "phone: zero-width space");

    field_is("{\"phone\":5550100}", 0, "phone", "must be a string",
             "payload: phone number type");
    field_is("{\"phone\":\"x\"}", 0, "phone", only, "payload: phone letter");
}


static void
test_avatar_url(void)
{
    char  *p;

    tap_is(url("https://cdn.example.com/a.png"), NULL, "url: https");
    tap_is(url("http://example.com"), NULL, "url: http without a path");
    tap_is(url("HTTPS://Example.COM/x"), NULL, "url: upper-case scheme");
    tap_is(url("hTtP://x.y?q=1#f"), NULL, "url: query right after the host");
    tap_is(url("https://x#frag"), NULL, "url: fragment right after the host");
    tap_is(url("https://user:pw@example.com:8443/p"), NULL,
           "url: userinfo and port");
    tap_is(url("https://a@b@example.com/"), NULL,
           "url: userinfo ends at the last '@'");
    tap_is(url("https://example.com:1/"), NULL, "url: port 1");
    tap_is(url("https://example.com:65535/"), NULL, "url: port 65535");
    tap_is(url("https://[::1]:8080/x"), NULL, "url: IPv6 literal and port");
    tap_is(url("https://[2001:db8::1]"), NULL, "url: IPv6 literal");
    tap_is(url("https://xn--mller-kva.de/"), NULL, "url: punycode host");
    tap_is(url("https://m\xc3\xbcller.de/\xc3\xa9"), NULL,
           "url: UTF-8 host and path");

    tap_is(url("ftp://example.com/a"), "must be an absolute http or https URL",
           "url: ftp scheme");
    tap_is(url("//example.com/a"), "must be an absolute http or https URL",
           "url: scheme-relative");
    tap_is(url("/avatar.png"), "must be an absolute http or https URL",
           "url: relative");
    tap_is(url("example.com/a.png"), "must be an absolute http or https URL",
           "url: no scheme");
    tap_is(url("https:/example.com"), "must be an absolute http or https URL",
           "url: one slash");
    tap_is(url("javascript:alert(1)"),
           "must be an absolute http or https URL", "url: javascript");
    tap_is(url("httpx://example.com"),
           "must be an absolute http or https URL", "url: httpx");
    tap_is(url(""), "must be an absolute http or https URL", "url: empty");
    tap_is(url("http:"), "must be an absolute http or https URL",
           "url: scheme only");

    tap_is(url("https://"), "must have a host", "url: nothing after //");
    tap_is(url("https:///path"), "must have a host", "url: empty host, path");
    tap_is(url("http://?q"), "must have a host", "url: empty host, query");
    tap_is(url("http://#f"), "must have a host", "url: empty host, fragment");
    tap_is(url("https://user@/p"), "must have a host",
           "url: userinfo, empty host");
    tap_is(url("https://:80/"), "must have a host", "url: port, no host");
    tap_is(url("https://\\\\evil.example/"), "must have a host",
           "url: backslash ends the authority like in browsers");
    tap_is(url("https://evil.example\\@good.example/"), NULL,
           "url: backslash before '@' (host is evil.example)");
    tap_is(url("https://exa<mple.com/"), "must have a valid host",
           "url: '<' in the host");
    tap_is(url("https://[::1/"), "must have a valid host",
           "url: unterminated IPv6 literal");
    tap_is(url("https://[]/"), "must have a valid host",
           "url: empty IPv6 literal");
    tap_is(url("https://[::1]x/"), "must have a valid host",
           "url: garbage after IPv6 literal");
    tap_is(url("https://[::g]/"), "must have a valid host",
           "url: bad IPv6 literal");

    tap_is(url("https://example.com:/"), "must have a valid port",
           "url: empty port");
    tap_is(url("https://example.com:0/"), "must have a valid port",
           "url: port 0");
    tap_is(url("https://example.com:65536/"), "must have a valid port",
           "url: port 65536");
    tap_is(url("https://example.com:99999999999999999999999/"),
           "must have a valid port", "url: huge port");
    tap_is(url("https://example.com:80a/"), "must have a valid port",
           "url: port with a letter");
    tap_is(url("https://example.com:-1/"), "must have a valid port",
           "url: negative port");
    tap_is(url("https://a:1:2/"), "must have a valid port",
           "url: two colons");
    tap_is(url("https://[::1]:/"), "must have a valid port",
           "url: IPv6 literal, empty port");

    tap_is(url("https://exa mple.com/"),
           "must not contain white space or control characters",
           "url: space in the host");
    tap_is(url("https://example.com/a b.png"),
           "must not contain white space or control characters",
           "url: space in the path");
    tap_is(url(" https://example.com/"),
           "must not contain white space or control characters",
           "url: leading space");
    tap_is(url("https://example.com/\x01"),
           "must not contain white space or control characters",
           "url: control byte");
    tap_is(url("https://example.com/\xe2\x80\xa8"),
           "must not contain white space or control characters",
           "url: U+2028");
    tap_is(url("https://example.com/\xc0\xaf"), "must be valid UTF-8",
           "url: overlong UTF-8 (direct call)");

    /* 2048 pass, 2049 fail, in code points */
    p = repeat(s1, "https://example.com/", 1);
    repeat(p, "a", 2048 - 20);
    tap_is(url(s1), NULL, "url: 2048 characters");

    p = repeat(s1, "https://example.com/", 1);
    repeat(p, "a", 2049 - 20);
    tap_is(url(s1), "must be at most 2048 characters", "url: 2049 characters");

    p = repeat(s1, "https://example.com/", 1);
    repeat(p, "\xc3\xa9", 2048 - 20);
    tap_is(url(s1), NULL, "url: 2048 characters, 4076 bytes");

    p = repeat(s1, "https://example.com/", 1);
    repeat(p, "\xc3\xa9", 2049 - 20);
    tap_is(url(s1), "must be at most 2048 characters",
           "url: 2049 characters, two-byte");

    field_is("{\"avatarUrl\":{}}", 0, "avatarUrl", "must be a string",
             "payload: avatarUrl object");
    field_is("{\"avatarUrl\":\"mailto:a@b.co\"}", 0, "avatarUrl",
             "must be an absolute http or https URL",
             "payload: avatarUrl mailto");
}


static void
test_metadata(void)
{
    char                                   *p;
    json_t                                 *root;
    ngx_int_t                               rc;
    ngx_http_supportdesk_report_t           rep;
    ngx_http_supportdesk_customer_input_t   in;

    rc = validate("{\"metadata\":{}}", 0, &root, &in, &rep);
    tap_ok(rc == NGX_OK && in.set_metadata && in.metadata_len == 2
           && in.metadata == json_object_get(root, "metadata"),
           "metadata: {} accepted, length 2, borrowed object");
    json_decref(root);

    rc = validate("{\"metadata\": { \"a\" : [ 1 , 2 ] } }", 0, &root, &in,
                  &rep);
    tap_ok(rc == NGX_OK && in.metadata_len == sizeof("{\"a\":[1,2]}") - 1,
           "metadata: length is of the compact form");
    json_decref(root);

    /* stored from the text as sent: the numbers are the client's own */
    rc = validate("{\"metadata\": {\"n\": 0.10, \"big\": 12345678901234561}}",
                  0, &root, &in, &rep);
    tap_ok(rc == NGX_OK && in.metadata_text.len == 37
           && memcmp(in.metadata_text.data,
                     "{\"n\": 0.10, \"big\": 12345678901234561}", 37) == 0,
           "metadata: its text as sent");
    tap_is_int(in.metadata_len,
               sizeof("{\"n\":0.10,\"big\":12345678901234561}") - 1,
               "metadata: its compact length counts the numbers as sent");
    json_decref(root);

    field_is("{\"metadata\":[]}", 0, "metadata", "must be an object",
             "metadata: array");
    field_is("{\"metadata\":\"{}\"}", 0, "metadata", "must be an object",
             "metadata: string");
    field_is("{\"metadata\":1}", 0, "metadata", "must be an object",
             "metadata: number");
    field_is("{\"metadata\":false}", 0, "metadata", "must be an object",
             "metadata: boolean");

    /* depth: the metadata object is level 1 */
    p = repeat(s2, "{\"metadata\":", 1);
    p = nest(p, "{\"a\":", "{\"x\":1}", "}", 7);
    repeat(p, "}", 1);
    field_is(s2, 0, "metadata", NULL, "metadata: 8 nested objects");

    p = repeat(s2, "{\"metadata\":", 1);
    p = nest(p, "{\"a\":", "{\"x\":1}", "}", 8);
    repeat(p, "}", 1);
    field_is(s2, 0, "metadata", "must not nest deeper than 8 levels",
             "metadata: 9 nested objects");

    p = repeat(s2, "{\"metadata\":{\"a\":", 1);
    p = nest(p, "[", "1", "]", 7);
    repeat(p, "}}", 1);
    field_is(s2, 0, "metadata", NULL, "metadata: object + 7 arrays");

    p = repeat(s2, "{\"metadata\":{\"a\":", 1);
    p = nest(p, "[", "1", "]", 8);
    repeat(p, "}}", 1);
    field_is(s2, 0, "metadata", "must not nest deeper than 8 levels",
             "metadata: object + 8 arrays");

    p = repeat(s2, "{\"metadata\":{\"a\":1,\"b\":[2],\"c\":", 1);
    p = nest(p, "[{\"d\":", "[]", "}]", 4);
    repeat(p, "}}", 1);
    field_is(s2, 0, "metadata", "must not nest deeper than 8 levels",
             "metadata: empty array at level 10 after shallow siblings");

    /* size: {"k":"<n x>"} is 8 + n bytes compact */
    p = repeat(s2, "{\"metadata\":{\"k\":\"", 1);
    p = repeat(p, "x", 16384 - 8);
    repeat(p, "\"}}", 1);
    rc = validate(s2, 0, &root, &in, &rep);
    tap_ok(rc == NGX_OK && in.metadata_len == 16384,
           "metadata: 16384 bytes compact");
    json_decref(root);

    p = repeat(s2, "{\"metadata\":{\"k\":\"", 1);
    p = repeat(p, "x", 16385 - 8);
    repeat(p, "\"}}", 1);
    field_is(s2, 0, "metadata", "must be at most 16384 bytes as compact JSON",
             "metadata: 16385 bytes compact");

    p = repeat(s2, "{\"metadata\":  {  \"k\"  :  \"", 1);
    p = repeat(p, "x", 16384 - 8);
    repeat(p, "\"  }  }", 1);
    field_is(s2, 0, "metadata", NULL,
             "metadata: white space outside the compact form is free");

    /* "\u00e9" is 6 bytes sent but 2 bytes compact: 8 + 8188 * 2 = 16384 */
    p = repeat(s2, "{\"metadata\":{\"k\":\"", 1);
    p = repeat(p, "\\u00e9", 8188);
    repeat(p, "\"}}", 1);
    field_is(s2, 0, "metadata", NULL,
             "metadata: escapes counted as serialized (16384)");

    p = repeat(s2, "{\"metadata\":{\"k\":\"", 1);
    p = repeat(p, "\\u00e9", 8188);
    repeat(p, "x\"}}", 1);
    field_is(s2, 0, "metadata", "must be at most 16384 bytes as compact JSON",
             "metadata: escapes counted as serialized (16385)");

    p = repeat(s2, "{\"metadata\":{\"k\":\"", 1);
    p = repeat(p, "x", 20000);
    p = repeat(p, "\",\"d\":", 1);
    p = nest(p, "[", "1", "]", 9);
    repeat(p, "}}", 1);
    field_is(s2, 0, "metadata", "must not nest deeper than 8 levels",
             "metadata: too deep and too big reports the depth");

    /* the single rule, directly */
    tap_is(ngx_http_supportdesk_check_metadata(NULL, text(""), NULL),
           "must be an object", "metadata: NULL json_t");
}


static void
test_customer(void)
{
    json_t                                 *root;
    ngx_int_t                               rc;
    ngx_http_supportdesk_report_t           rep;
    ngx_http_supportdesk_customer_input_t   in;

    rc = validate("{\"email\":\"John@Acme.com\",\"name\":\"  John Doe \","
                  "\"phone\":\"+1 555 0100\","
                  "\"avatarUrl\":\"https://cdn.acme.com/j.png\","
                  "\"metadata\":{\"plan\":\"pro\",\"seats\":5}}",
                  0, &root, &in, &rep);

    tap_ok(rc == NGX_OK && rep.n == 0, "customer: full valid payload");
    tap_ok(in.set_email && in.email.len == 13
           && memcmp(in.email.data, "John@Acme.com", 13) == 0,
           "customer: email as sent");
    tap_ok(in.set_name && in.name.len == 8
           && memcmp(in.name.data, "John Doe", 8) == 0,
           "customer: name trimmed");
    tap_ok(in.set_phone && in.phone.len == 11, "customer: phone");
    tap_ok(in.set_avatar_url && in.avatar_url.len == 26,
           "customer: avatarUrl");
    tap_ok(in.set_metadata
           && in.metadata_len == sizeof("{\"plan\":\"pro\",\"seats\":5}") - 1,
           "customer: metadata and its compact length");
    tap_ok(!in.clear_phone && !in.clear_avatar_url && !in.clear_metadata,
           "customer: nothing cleared");
    json_decref(root);

    rc = validate("{}", 0, &root, &in, &rep);
    tap_ok(rc == NGX_OK && rep.n == 0 && !in.set_email && !in.set_name
           && !in.set_phone && !in.set_avatar_url && !in.set_metadata,
           "customer: empty object is valid and sets nothing");
    json_decref(root);

    /* null clears the optional fields */
    rc = validate("{\"phone\":null,\"avatarUrl\":null,\"metadata\":null}", 0,
                  &root, &in, &rep);
    tap_ok(rc == NGX_OK && rep.n == 0, "customer: nulls are valid");
    tap_ok(in.clear_phone && in.clear_avatar_url && in.clear_metadata
           && !in.set_phone && !in.set_avatar_url && !in.set_metadata,
           "customer: nulls set the clear flags only");
    json_decref(root);

    rc = validate("{\"email\":null,\"name\":null}", 0, &root, &in, &rep);
    tap_ok(rc == NGX_DECLINED && rep.n == 2
           && !in.set_email && !in.set_name,
           "customer: email and name cannot be null");
    json_decref(root);

    /* every problem at once, in the order of the object */
    rc = validate("{\"id\":\"c_1\",\"email\":\"bad\",\"createdAt\":\"x\","
                  "\"name\":\" \",\"updatedAt\":1,\"foo\":1,"
                  "\"phone\":\"abc\",\"wasCreated\":true,\"bar\":null,"
                  "\"avatarUrl\":\"ftp://x\",\"externalId\":\"u1\","
                  "\"Email\":\"a@b.co\",\"metadata\":[],\"\":0}",
                  0, &root, &in, &rep);

    tap_ok(rc == NGX_DECLINED, "all: declined");

    if (!tap_is_int(rep.n, 14, "all: 14 violations")) {
        rep.n = ngx_min(rep.n, 14);
    }

    tap_is(violation(&rep, "id"), "is read-only", "all: id");
    tap_is(violation(&rep, "email"), "must be a valid email address",
           "all: email");
    tap_is(violation(&rep, "createdAt"), "is read-only", "all: createdAt");
    tap_is(violation(&rep, "name"), "must not be empty", "all: name");
    tap_is(violation(&rep, "updatedAt"), "is read-only", "all: updatedAt");
    tap_is(violation(&rep, "foo"), "is not a known field", "all: foo");
    tap_is(violation(&rep, "phone"),
           "must contain only digits, spaces and + - ( ) .", "all: phone");
    tap_is(violation(&rep, "wasCreated"), "is read-only", "all: wasCreated");
    tap_is(violation(&rep, "bar"), "is not a known field",
           "all: unknown key with null value");
    tap_is(violation(&rep, "avatarUrl"),
           "must be an absolute http or https URL", "all: avatarUrl");
    tap_is(violation(&rep, "externalId"), "is read-only",
           "all: externalId in a single upsert body");
    tap_is(violation(&rep, "Email"), "is not a known field",
           "all: keys are case-sensitive");
    tap_is(violation(&rep, "metadata"), "must be an object", "all: metadata");
    tap_is(violation(&rep, ""), "is not a known field", "all: empty key");

    tap_ok(rep.n == 14
           && rep.v[0].field.len == 2
           && memcmp(rep.v[0].field.data, "id", 2) == 0
           && rep.v[13].field.len == 0,
           "all: reported in the order of the object");
    tap_ok(rep.v[0].message.len == sizeof("is read-only") - 1,
           "all: message length set");
    json_decref(root);

    rc = validate("{\"notesCount\":3}", 0, &root, &in, &rep);
    tap_is(violation(&rep, "notesCount"), "is read-only",
           "customer: notesCount is read-only");
    json_decref(root);
}


static void
test_flags(void)
{
    char  *p;

    field_is("{\"externalId\":\"u_1\",\"email\":\"a@b.co\"}",
             NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID, "externalId", NULL,
             "batch item: externalId accepted");
    field_is("{\"email\":\"a@b.co\"}",
             NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID, "externalId",
             "is required", "batch item: externalId missing");
    field_is("{\"externalId\":null}",
             NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID, "externalId",
             "cannot be null", "batch item: externalId null");
    field_is("{\"externalId\":42}",
             NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID, "externalId",
             "must be a string", "batch item: externalId number");
    field_is("{\"externalId\":\"\"}",
             NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID, "externalId",
             "must be 1-255 bytes", "batch item: externalId empty");
    field_is("{\"externalId\":\"a/b\"}",
             NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID, "externalId",
             "must not contain '/'", "batch item: externalId with '/'");
    field_is("{\"externalId\":\"a\\u0001\"}",
             NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID, "externalId",
             "must not contain control characters",
             "batch item: externalId with a control character");
    field_is("{\"externalId\":\"a%2Fb\"}",
             NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID, "externalId", NULL,
             "batch item: externalId is not percent-decoded");

    p = repeat(s2, "{\"externalId\":\"", 1);
    p = repeat(p, "\\u00e9", 127);
    repeat(p, "x\"}", 1);
    field_is(s2, NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID, "externalId", NULL,
             "batch item: externalId of 255 bytes");

    p = repeat(s2, "{\"externalId\":\"", 1);
    p = repeat(p, "\\u00e9", 128);
    repeat(p, "\"}", 1);
    field_is(s2, NGX_HTTP_SUPPORTDESK_ALLOW_EXTERNAL_ID, "externalId",
             "must be 1-255 bytes", "batch item: externalId of 256 bytes");

    field_is("{\"email\":\"a@b.co\",\"name\":\"N\"}",
             NGX_HTTP_SUPPORTDESK_FORBID_EMAIL, "email",
             "cannot be changed by a bulk update", "bulk set: email refused");
    field_is("{\"email\":null}", NGX_HTTP_SUPPORTDESK_FORBID_EMAIL, "email",
             "cannot be changed by a bulk update",
             "bulk set: email null refused");
    field_is("{\"name\":\"N\",\"phone\":null}",
             NGX_HTTP_SUPPORTDESK_FORBID_EMAIL, "name", NULL,
             "bulk set: other fields accepted");
    field_is("{\"externalId\":\"u1\"}", NGX_HTTP_SUPPORTDESK_FORBID_EMAIL,
             "externalId", "is read-only", "bulk set: externalId refused");
}


static void
test_report(void)
{
    char                                   *p;
    json_t                                 *root;
    ngx_int_t                               rc;
    ngx_uint_t                              i;
    ngx_http_supportdesk_report_t           rep;
    ngx_http_supportdesk_customer_input_t   in;

    rep.n = 0;
    ngx_http_supportdesk_report_add(&rep, "externalId", 10, "x");

    root = json_loads("{\"foo\":1,\"name\":\"ok\"}", 0, NULL);
    rc = ngx_http_supportdesk_validate_customer(root,
                                     text("{\"foo\":1,\"name\":\"ok\"}"),
                                     0, &in, &rep);
    tap_ok(rc == NGX_DECLINED && rep.n == 2
           && rep.v[1].field.len == 3,
           "report: violations are appended");
    json_decref(root);

    rep.n = 0;
    root = json_loads("{\"name\":\"ok\"}", 0, NULL);
    rc = ngx_http_supportdesk_validate_customer(root, text("{\"name\":\"ok\"}"),
                                                0, &in, &rep);
    tap_ok(rc == NGX_OK && rep.n == 0 && in.set_name,
           "report: NGX_OK when nothing was added");
    json_decref(root);

    /* 40 unknown keys: 32 stored, no overflow */
    p = repeat(s2, "{", 1);

    for (i = 0; i < 40; i++) {
        p += sprintf(p, "%s\"k%u\":%u", i ? "," : "", (unsigned) i,
                     (unsigned) i);
    }

    repeat(p, "}", 1);

    rc = validate(s2, 0, &root, &in, &rep);
    tap_ok(rc == NGX_DECLINED && rep.n == MAX_V,
           "report: stops at NGX_HTTP_SUPPORTDESK_MAX_VIOLATIONS");
    tap_ok(rep.v[MAX_V - 1].field.len == 3
           && memcmp(rep.v[MAX_V - 1].field.data, "k31", 3) == 0,
           "report: keeps the first ones");
    json_decref(root);

    /* a full report still yields NGX_DECLINED */
    rep.n = MAX_V;
    root = json_loads("{\"foo\":1}", 0, NULL);
    rc = ngx_http_supportdesk_validate_customer(root, text("{\"foo\":1}"), 0,
                                                &in, &rep);
    tap_ok(rc == NGX_DECLINED && rep.n == MAX_V,
           "report: declined even when already full");
    json_decref(root);

    rep.n = 0;
    root = json_loads("[1]", JSON_DECODE_ANY, NULL);
    rc = ngx_http_supportdesk_validate_customer(root, text("[1]"), 0, &in,
                                                &rep);
    tap_ok(rc == NGX_DECLINED && rep.n == 1,
           "report: a non-object payload is declined");
    json_decref(root);
}


static void
test_parse(void)
{
    int          code;
    char        *p;
    json_t      *root;
    const char  *msg;

    tap_is(parse("{\"a\":1}", 7, &code), NULL, "parse: object");
    tap_is(parse("\r\n {\"a\":[1,{}]}\n\t ", 18, &code), NULL,
           "parse: object with white space around");
    tap_is(parse("{}", 2, &code), NULL, "parse: empty object");

    tap_is(parse("", 0, &code), "body is empty", "parse: empty body");
    tap_is(parse(" \r\n\t", 4, &code), "body is empty",
           "parse: white space only");

    msg = "x";
    root = ngx_http_supportdesk_parse_object(NULL, 0, &msg, NULL);
    tap_ok(root == NULL && strcmp(msg, "body is empty") == 0,
           "parse: NULL buffer, no error struct");

    tap_is(parse("{", 1, &code), "body is not valid JSON",
           "parse: truncated '{'");
    tap_is(parse("{\"a\":", 5, &code), "body is not valid JSON",
           "parse: truncated after ':'");
    tap_is(parse("{\"a\":\"xy", 8, &code), "body is not valid JSON",
           "parse: truncated string");
    tap_is(parse("{\"a\":1,}", 8, &code), "body is not valid JSON",
           "parse: trailing comma");
    tap_is(parse("{'a':1}", 7, &code), "body is not valid JSON",
           "parse: single quotes");
    tap_is(parse("{a:1}", 5, &code), "body is not valid JSON",
           "parse: bare key");
    tap_is(parse("nul", 3, &code), "body is not valid JSON",
           "parse: truncated literal");
    tap_is(parse("{\"a\":1} x", 9, &code), "body is not valid JSON",
           "parse: trailing garbage");
    tap_is_int(code, json_error_end_of_input_expected,
               "parse: jansson's code is kept in *error");
    tap_is(parse("{\"a\":1}{}", 9, &code), "body is not valid JSON",
           "parse: two documents");
    tap_is(parse("{\"a\":1}\0", 8, &code), "body is not valid JSON",
           "parse: NUL byte after the object");
    tap_is(parse("{\"a\":\"x\ty\"}", 11, &code), "body is not valid JSON",
           "parse: raw tab inside a string");
    tap_is(parse("{\"a\":\"\\ud800\"}", 14, &code), "body is not valid JSON",
           "parse: lone surrogate escape");

    tap_is(parse("[1,2]", 5, &code), "body must be a JSON object",
           "parse: array");
    tap_is_int(code, json_error_wrong_type,
               "parse: non-object sets json_error_wrong_type");
    tap_is(parse("\"str\"", 5, &code), "body must be a JSON object",
           "parse: string");
    tap_is(parse("42", 2, &code), "body must be a JSON object",
           "parse: number");
    tap_is(parse("null", 4, &code), "body must be a JSON object",
           "parse: null");
    tap_is(parse("true", 4, &code), "body must be a JSON object",
           "parse: true");

    tap_is(parse("{\"a\":1,\"a\":2}", 13, &code), "body has a duplicate key",
           "parse: duplicate key");
    tap_is(parse("{\"m\":{\"x\":1,\"x\":1}}", 19, &code),
           "body has a duplicate key", "parse: nested duplicate key");

    tap_is(parse("{\"a\":\"x\\u0000y\"}", 16, &code),
           "body must not contain \\u0000", "parse: \\u0000 in a value");
    tap_is(parse("{\"a\\u0000\":1}", 13, &code),
           "body must not contain \\u0000", "parse: \\u0000 in a key");

    tap_is(parse("{\"a\":\"\xff\"}", 9, &code), "body is not valid UTF-8",
           "parse: 0xFF byte in a string");
    tap_is(parse("{\"a\":\"\xc0\xaf\"}", 10, &code), "body is not valid UTF-8",
           "parse: overlong sequence");
    tap_is(parse("{\"a\":\"\xed\xa0\x80\"}", 11, &code),
           "body is not valid UTF-8", "parse: UTF-8 encoded surrogate");
    tap_is(parse("{\"a\":\"\xc3\"}", 9, &code), "body is not valid UTF-8",
           "parse: truncated sequence");
    tap_is(parse("{\"\xe9\":1}", 7, &code), "body is not valid UTF-8",
           "parse: Latin-1 key");
    tap_is_int(code, json_error_invalid_utf8,
               "parse: json_error_invalid_utf8 kept");

    tap_is(parse("{\"a\":1e999}", 11, &code), "body has a number out of range",
           "parse: real overflow");
    tap_is(parse("{\"a\":99999999999999999999}", 26, &code),
           "body has a number out of range", "parse: integer overflow");

    p = repeat(s2, "{\"a\":", 1);
    p = nest(p, "[", "1", "]", 3000);
    p = repeat(p, "}", 1);
    tap_is(parse(s2, p - s2, &code), "body is nested too deeply",
           "parse: 3000 nested arrays");
}


static void
test_external_id(void)
{
    char                            out[1024];
    char                           *p;
    u_char                          buf[16];
    ngx_str_t                       raw, dec;
    ngx_int_t                       rc;
    ngx_http_supportdesk_report_t   rep;

    tap_is(ext("user_42", out), NULL, "externalId: plain");
    tap_is(out, "user_42", "externalId: decoded as is");

    tap_is(ext("a+b", out), NULL, "externalId: '+'");
    tap_is(out, "a+b", "externalId: '+' stays '+'");

    tap_is(ext("a%20b~%2B", out), NULL, "externalId: %%20 and %%2B");
    tap_is(out, "a b~+", "externalId: decoded to space and '+'");

    tap_is(ext("%C3%A9", out), NULL, "externalId: %%C3%%A9");
    tap_is(out, "\xc3\xa9", "externalId: %%C3%%A9 is U+00E9");

    tap_is(ext("%c3%a9t%C3%a9", out), NULL, "externalId: lower-case hex");
    tap_is(out, "\xc3\xa9t\xc3\xa9", "externalId: mixed case decoded");

    tap_is(ext("caf\xc3\xa9", out), NULL, "externalId: raw UTF-8");
    tap_is(ext("%F0%9F%98%80", out), NULL, "externalId: 4-byte character");

    tap_is(ext("", out), "must be 1-255 bytes", "externalId: empty");
    tap_is(ext("a%2Fb", out), "must not contain '/'", "externalId: %%2F");
    tap_is(ext("a%2fb", out), "must not contain '/'", "externalId: %%2f");
    tap_is(ext("a/b", out), "must not contain '/'", "externalId: raw '/'");
    tap_is(ext("%00", out), "must not contain control characters",
           "externalId: %%00");
    tap_is(ext("a%0Ab", out), "must not contain control characters",
           "externalId: %%0A");
    tap_is(ext("a%1F", out), "must not contain control characters",
           "externalId: %%1F");
    tap_is(ext("%7F", out), "must not contain control characters",
           "externalId: %%7F");
    tap_is(ext("a%C2%85", out), "must not contain control characters",
           "externalId: %%C2%%85 (U+0085)");
    tap_is(ext("%2F%00", out), "must not contain control characters",
           "externalId: control reported before '/'");

    tap_is(ext("%zz", out), "has an invalid percent-encoding",
           "externalId: %%zz");
    tap_is(ext("abc%", out), "has an invalid percent-encoding",
           "externalId: trailing %%");
    tap_is(ext("abc%4", out), "has an invalid percent-encoding",
           "externalId: trailing %%4");
    tap_is(ext("%4g", out), "has an invalid percent-encoding",
           "externalId: %%4g");
    tap_is(ext("%%41", out), "has an invalid percent-encoding",
           "externalId: %%%%41");
    tap_is(ext("100%", out), "has an invalid percent-encoding",
           "externalId: 100%%");

    tap_is(ext("%FF", out), "must be valid UTF-8", "externalId: %%FF");
    tap_is(ext("%C3", out), "must be valid UTF-8",
           "externalId: truncated sequence");
    tap_is(ext("%C0%AF", out), "must be valid UTF-8",
           "externalId: overlong '/'");
    tap_is(ext("%ED%A0%80", out), "must be valid UTF-8",
           "externalId: surrogate");
    tap_is(ext("%F4%90%80%80", out), "must be valid UTF-8",
           "externalId: above U+10FFFF");
    tap_is(ext("caf\xe9", out), "must be valid UTF-8",
           "externalId: raw Latin-1 byte");

    /* 255 pass, 256 fail, in decoded bytes */
    repeat(s1, "x", 255);
    tap_is(ext(s1, out), NULL, "externalId: 255 bytes");

    repeat(s1, "x", 256);
    tap_is(ext(s1, out), "must be 1-255 bytes", "externalId: 256 bytes");

    repeat(s1, "%41", 255);
    tap_is(ext(s1, out), NULL, "externalId: 765 raw bytes decode to 255");
    tap_is_int(strlen(out), 255, "externalId: decoded length 255");

    repeat(s1, "%41", 256);
    tap_is(ext(s1, out), "must be 1-255 bytes",
           "externalId: 768 raw bytes decode to 256");

    p = repeat(s1, "%C3%A9", 127);
    repeat(p, "x", 1);
    tap_is(ext(s1, out), NULL, "externalId: 127 x U+00E9 + 'x' = 255 bytes");

    repeat(s1, "%C3%A9", 128);
    tap_is(ext(s1, out), "must be 1-255 bytes",
           "externalId: 128 x U+00E9 = 256 bytes");

    p = repeat(s1, "x", 300);
    repeat(p, "%2F", 1);
    tap_is(ext(s1, out), "must be 1-255 bytes",
           "externalId: length reported first");

    /* in place, as the handler may do with r->uri memory */
    ngx_memcpy(buf, "a%C3%A9b", 8);
    raw.data = buf;
    raw.len = 8;
    rep.n = 0;
    rc = ngx_http_supportdesk_decode_external_id(&raw, buf, &dec, &rep);
    tap_ok(rc == NGX_OK && rep.n == 0 && dec.data == buf && dec.len == 4
           && memcmp(buf, "a\xc3\xa9" "b", 4) == 0,
           "externalId: decodes in place");

    raw.data = (u_char *) "a%2Fb";
    raw.len = 5;
    rep.n = 0;
    rc = ngx_http_supportdesk_decode_external_id(&raw, buf, &dec, &rep);
    tap_ok(rc == NGX_DECLINED && rep.n == 1 && rep.v[0].field.len == 10
           && memcmp(rep.v[0].field.data, "externalId", 10) == 0,
           "externalId: violation named \"externalId\"");
}


/* helpers */


/* exactly len bytes, so that ASan sees any access past them */

/* s as the text validate_customer() takes: valid until the next 16 calls */

static ngx_str_t *
text(const char *s)
{
    static ngx_uint_t  n;
    static ngx_str_t   ring[16];
    ngx_str_t         *t;

    t = &ring[n++ % 16];
    t->data = (u_char *) s;
    t->len = strlen(s);

    return t;
}


static u_char *
alloc(size_t len)
{
    u_char  *p;

    p = malloc(len ? len : 1);

    if (p == NULL) {
        fprintf(stderr, "malloc failed\n");
        exit(2);
    }

    return p;
}


/* a copy without the terminating NUL */

static u_char *
exact(const char *s, size_t len)
{
    u_char  *p;

    p = alloc(len);
    ngx_memcpy(p, s, len);

    return p;
}


static char *
repeat(char *p, const char *unit, size_t n)
{
    size_t  i, len;

    len = strlen(unit);

    for (i = 0; i < n; i++) {
        ngx_memcpy(p, unit, len);
        p += len;
    }

    *p = '\0';

    return p;
}


static char *
nest(char *p, const char *open, const char *inner, const char *close,
    size_t n)
{
    p = repeat(p, open, n);
    p = repeat(p, inner, 1);
    return repeat(p, close, n);
}


static const char *
email(const char *s)
{
    return email_n(s, strlen(s));
}


static const char *
email_n(const char *s, size_t len)
{
    const char  *msg;
    u_char      *p;

    p = exact(s, len);
    msg = ngx_http_supportdesk_check_email(p, len);
    free(p);

    return msg;
}


static const char *
name(const char *s, ngx_str_t *trimmed)
{
    return name_n(s, strlen(s), trimmed);
}


/* the copy lives until the next call, so trimmed stays readable */

static const char *
name_n(const char *s, size_t len, ngx_str_t *trimmed)
{
    static u_char  *copy;

    free(copy);
    copy = exact(s, len);

    return ngx_http_supportdesk_check_name(copy, len, trimmed);
}


static const char *
phone(const char *s)
{
    const char  *msg;
    u_char      *p;

    p = exact(s, strlen(s));
    msg = ngx_http_supportdesk_check_phone(p, strlen(s));
    free(p);

    return msg;
}


static const char *
url(const char *s)
{
    const char  *msg;
    u_char      *p;

    p = exact(s, strlen(s));
    msg = ngx_http_supportdesk_check_avatar_url(p, strlen(s));
    free(p);

    return msg;
}


/* NULL when s parses into an object; *code is jansson's error code */

static const char *
parse(const char *s, size_t len, int *code)
{
    u_char        *p;
    json_t        *root;
    const char    *msg;
    json_error_t   error;

    p = exact(s, len);
    msg = "(not set)";
    error.text[JSON_ERROR_TEXT_LENGTH - 1] = (char) 0x7f;

    root = ngx_http_supportdesk_parse_object(p, len, &msg, &error);
    free(p);

    *code = json_error_code(&error);

    if (root != NULL) {
        json_decref(root);
        return NULL;
    }

    return msg;
}


/* decodes raw from an exact copy into an exact buffer; copies the result */

static const char *
ext(const char *raw, char *decoded)
{
    u_char                         *dst;
    ngx_str_t                       r, out;
    ngx_int_t                       rc;
    ngx_http_supportdesk_report_t   rep;

    r.len = strlen(raw);
    r.data = exact(raw, r.len);
    dst = alloc(r.len);

    rep.n = 0;
    out.len = 12345;

    rc = ngx_http_supportdesk_decode_external_id(&r, dst, &out, &rep);

    if ((rc == NGX_OK) != (rep.n == 0)
        || (rep.n && (rep.v[0].field.len != 10
                      || memcmp(rep.v[0].field.data, "externalId", 10))))
    {
        tap_ok(0, "externalId: rc and report agree for '%s'", raw);
    }

    decoded[0] = '\0';

    if (rc == NGX_OK) {
        ngx_memcpy(decoded, out.data, out.len);
        decoded[out.len] = '\0';
    }

    free(r.data);
    free(dst);

    return rep.n ? (const char *) rep.v[0].message.data : NULL;
}


static ngx_int_t
validate(const char *json, ngx_uint_t flags, json_t **root,
    ngx_http_supportdesk_customer_input_t *in,
    ngx_http_supportdesk_report_t *rep)
{
    const char  *msg;

    rep->n = 0;

    *root = ngx_http_supportdesk_parse_object((const u_char *) json,
                                              strlen(json), &msg, NULL);
    if (*root == NULL) {
        fprintf(stderr, "# fixture does not parse: %s\n", msg);
        tap_ok(0, "fixture parses");
        ngx_memzero(in, sizeof(ngx_http_supportdesk_customer_input_t));
        return NGX_ERROR;
    }

    return ngx_http_supportdesk_validate_customer(*root, text(json), flags,
                                                  in, rep);
}


static const char *
violation(ngx_http_supportdesk_report_t *rep, const char *field)
{
    size_t      len;
    ngx_uint_t  i;

    len = strlen(field);

    for (i = 0; i < rep->n; i++) {
        if (rep->v[i].field.len == len
            && memcmp(rep->v[i].field.data, field, len) == 0)
        {
            return (const char *) rep->v[i].message.data;
        }
    }

    return NULL;
}


/*
 * The violation of one field must be want; with want NULL the whole payload
 * must be valid (NGX_OK and nothing reported).
 */

static void
field_is(const char *json, ngx_uint_t flags, const char *field,
    const char *want, const char *desc)
{
    json_t                                 *root;
    ngx_int_t                               rc;
    const char                             *got;
    ngx_http_supportdesk_report_t           rep;
    ngx_http_supportdesk_customer_input_t   in;

    rc = validate(json, flags, &root, &in, &rep);

    if (rc == NGX_ERROR) {
        return;
    }

    got = violation(&rep, field);

    if (want == NULL && got == NULL && rep.n) {
        got = (const char *) rep.v[0].message.data;
        fprintf(stderr, "# unexpected violation on another field\n");
    }

    if (want != NULL && rc != NGX_DECLINED) {
        got = "(validate_customer returned NGX_OK)";
    }

    tap_is(got, want, "%s", desc);

    json_decref(root);
}


static const char *
quote(const char *s)
{
    static u_char  out[256];
    u_char        *end;

    end = ngx_http_supportdesk_utf8_quote(out, (const u_char *) s,
                                          strlen(s));
    *end = '\0';

    return (const char *) out;
}


static void
test_utf8_quote(void)
{
    const u_char  *a = (const u_char *) "caf\xc3\xa9";

    tap_ok(ngx_http_supportdesk_utf8_valid(a, 5), "utf8: valid");
    tap_ok(!ngx_http_supportdesk_utf8_valid(a, 4), "utf8: cut inside a character");
    tap_ok(ngx_http_supportdesk_utf8_valid(a, 0), "utf8: empty is valid");
    tap_ok(!ngx_http_supportdesk_utf8_valid((const u_char *) "\xed\xa0\x80", 3),
           "utf8: a surrogate is not valid");
    tap_ok(!ngx_http_supportdesk_utf8_valid((const u_char *) "\xc0\xaf", 2),
           "utf8: an overlong is not valid");

    tap_is(quote("caf\xc3\xa9"), "caf\xc3\xa9", "quote: valid text as it is");
    tap_is(quote("x\xff"), "x\xef\xbf\xbd", "quote: a bad byte is U+FFFD");
    tap_is(quote("\xc3"), "\xef\xbf\xbd", "quote: a cut sequence is U+FFFD");
    tap_is(quote("\xff\xfe"), "\xef\xbf\xbd\xef\xbf\xbd",
           "quote: one U+FFFD per bad byte");
    tap_is(quote("\xe2\x82\xac\x80" "a"), "\xe2\x82\xac\xef\xbf\xbd" "a",
           "quote: a stray continuation byte after a good character");
    tap_ok(ngx_http_supportdesk_utf8_valid((const u_char *) quote("\xf4\x90\x80\x80"),
                                           strlen(quote("\xf4\x90\x80\x80"))),
           "quote: past U+10FFFF, the result is valid UTF-8");
}


/* the compact form of json, NULL when refused; the length pass agrees */

static const char *
compact(const char *json)
{
    size_t         len, n;
    u_char        *in;
    static char    out[4096];

    len = strlen(json);
    in = exact(json, len);

    n = ngx_http_supportdesk_json_compact(in, len, NULL);

    if (n == 0 || n > len
        || ngx_http_supportdesk_json_compact(in, len, (u_char *) out) != n)
    {
        free(in);
        return NULL;
    }

    out[n] = '\0';
    free(in);

    return out;
}


/* the text of json's member name, "(declined)" or "(error)" */

static const char *
member(const char *json, const char *name)
{
    ngx_int_t     rc;
    ngx_str_t     obj, value;
    static char   out[4096];

    obj.len = strlen(json);
    obj.data = exact(json, obj.len);

    rc = ngx_http_supportdesk_json_member(&obj, name, strlen(name), &value);

    if (rc == NGX_OK) {
        memcpy(out, value.data, value.len);
        out[value.len] = '\0';

    } else {
        strcpy(out, rc == NGX_DECLINED ? "(declined)" : "(error)");
    }

    free(obj.data);

    return out;
}


static void
test_raw_json(void)
{
    char                              *p;
    ngx_int_t                          rc;
    ngx_str_t                          arr, v;
    ngx_uint_t                         n;
    ngx_http_supportdesk_json_iter_t   it;

    /* compact: white space out, everything else as sent */
    tap_is(compact(" { \"a\" : [ 1 ,\t2 ] ,\r\n\"b\":{ } } "),
           "{\"a\":[1,2],\"b\":{}}", "compact: white space removed");
    tap_is(compact("{\"x\":0.1,\"y\":12345678901234561,\"z\":1E2,\"w\":-0,"
                   "\"v\":1.0e-400,\"u\":-12.50E+03}"),
           "{\"x\":0.1,\"y\":12345678901234561,\"z\":1E2,\"w\":-0,"
           "\"v\":1.0e-400,\"u\":-12.50E+03}",
           "compact: numbers exactly as sent");
    tap_is(compact("{\"k\":[true , false , null]}"),
           "{\"k\":[true,false,null]}", "compact: literals");
    tap_is(compact("{\"s\":\" a  b \"}"), "{\"s\":\" a  b \"}",
           "compact: white space inside strings stays");

    /* strings escaped as jansson's JSON_COMPACT writes them */
    tap_is(compact("\"\\u00e9\\/\\u0041\""), "\"\xc3\xa9/A\"",
           "compact: \\u escapes decoded, \\/ as /");
    tap_is(compact("\"\\u0001\\u001f\\u0008\\u000a\""),
           "\"\\u0001\\u001F\\b\\n\"",
           "compact: control characters as jansson escapes them");
    tap_is(compact("\"\\b\\f\\n\\r\\t\\\"\\\\\""),
           "\"\\b\\f\\n\\r\\t\\\"\\\\\"", "compact: short escapes kept");
    tap_is(compact("\"\\u0022\\u005c\""), "\"\\\"\\\\\"",
           "compact: \\u0022 and \\u005c as \\\" and \\\\");
    tap_is(compact("\"\\ud83d\\ude00\\u007f\""), "\"\xf0\x9f\x98\x80\x7f\"",
           "compact: a surrogate pair as UTF-8, DEL as it is");
    tap_is(compact("\"\\ud83d\""), NULL, "compact: a lone high surrogate");
    tap_is(compact("\"\\ude00\""), NULL, "compact: a lone low surrogate");
    tap_is(compact("\"\\ud83dx\""), NULL,
           "compact: a high surrogate without its low half");
    tap_is(compact("\"\\x\""), NULL, "compact: an unknown escape");
    tap_is(compact("\"\\u12\""), NULL, "compact: a short \\u");
    tap_is(compact("\"ab\\"), NULL, "compact: a backslash at the end");

    /* members, found by their decoded key */
    tap_is(member("{\"a\":1,\"metadata\" : {\"x\":[1,{\"y\":\"}]\"}]} ,"
                  "\"b\":2}", "metadata"),
           "{\"x\":[1,{\"y\":\"}]\"}]}", "member: an object's text");
    tap_is(member("{\"a\":1,\"b\":-2.50e1}", "b"), "-2.50e1",
           "member: a number's text");
    tap_is(member("{\"\\u006detadata\":5}", "metadata"), "5",
           "member: an escaped key");
    tap_is(member("{\"a\\\"b\":\"x\\\"\"}", "a\"b"), "\"x\\\"\"",
           "member: quotes escaped in key and value");
    tap_is(member("{\"\\ud83d\\ude00\":[]}", "\xf0\x9f\x98\x80"), "[]",
           "member: a key with a surrogate pair");
    tap_is(member("{\"metadat\":1,\"metadataa\":2}", "metadata"),
           "(declined)", "member: keys that only look alike");
    tap_is(member("{}", "a"), "(declined)", "member: an empty object");
    tap_is(member("[1]", "a"), "(error)", "member: not an object");
    tap_is(member("{\"a\" 1}", "a"), "(error)", "member: no colon");

    /* array elements */
    arr.data = (u_char *) "[ 1 , {\"a\":[2,\"]\"]} ,\"x,]\" , [] ]";
    arr.len = strlen((char *) arr.data);
    ngx_http_supportdesk_json_array(&it, &arr);

    rc = ngx_http_supportdesk_json_next(&it, &v);
    tap_ok(rc == NGX_OK && v.len == 1 && v.data[0] == '1', "array: 1st");
    rc = ngx_http_supportdesk_json_next(&it, &v);
    tap_ok(rc == NGX_OK && v.len == 13
           && memcmp(v.data, "{\"a\":[2,\"]\"]}", 13) == 0, "array: 2nd");
    rc = ngx_http_supportdesk_json_next(&it, &v);
    tap_ok(rc == NGX_OK && v.len == 5 && memcmp(v.data, "\"x,]\"", 5) == 0,
           "array: 3rd, a string holding , and ]");
    rc = ngx_http_supportdesk_json_next(&it, &v);
    tap_ok(rc == NGX_OK && v.len == 2 && memcmp(v.data, "[]", 2) == 0,
           "array: 4th");
    rc = ngx_http_supportdesk_json_next(&it, &v);
    tap_ok(rc == NGX_DONE && it.pos == arr.data + arr.len && it.n == 4,
           "array: done at its ]");

#define elements(text)                                                       \
    (arr.data = (u_char *) (text), arr.len = strlen(text),                   \
     ngx_http_supportdesk_json_array(&it, &arr), n = 0,                      \
     rc = ngx_http_supportdesk_json_next(&it, &v))

    elements("[]");
    tap_ok(rc == NGX_DONE, "array: [] has none");

    for (elements("[1,]"); rc == NGX_OK; n++) {
        rc = ngx_http_supportdesk_json_next(&it, &v);
    }
    tap_ok(rc == NGX_ERROR && n == 1, "array: a trailing comma");

    for (elements("[1 2]"); rc == NGX_OK; n++) {
        rc = ngx_http_supportdesk_json_next(&it, &v);
    }
    tap_ok(rc == NGX_ERROR && n == 1, "array: a missing comma");

    elements("[,1]");
    tap_ok(rc == NGX_ERROR, "array: a leading comma");
    elements("[{\"a\":[1]");
    tap_ok(rc == NGX_ERROR, "array: an element without its end");
    elements("[\"abc");
    tap_ok(rc == NGX_ERROR, "array: a string without its end");
    elements("{}");
    tap_ok(rc == NGX_ERROR, "array: not an array");

    /* elements nest at most JSON_PARSER_MAX_DEPTH - 2 deep */
    p = repeat(s1, "[", 1);
    p = nest(p, "[", "1", "]", JSON_PARSER_MAX_DEPTH - 2);
    repeat(p, "]", 1);
    elements(s1);
    tap_ok(rc == NGX_OK, "array: an element 2046 deep");

    p = repeat(s1, "[", 1);
    p = nest(p, "[", "1", "]", JSON_PARSER_MAX_DEPTH - 1);
    repeat(p, "]", 1);
    elements(s1);
    tap_ok(rc == NGX_ERROR, "array: an element 2047 deep");

#undef elements
}


/*
 * parse_batch() of json: its message (NULL: parsed), the array's text into
 * array ("" when it left none out), and how many elements the tree's
 * "customers" holds (-1: no such array).
 */

static const char *
batch(const char *json, char *array, int *elements)
{
    size_t        len;
    u_char       *buf;
    json_t       *root, *list;
    ngx_str_t     arr;
    const char   *msg;

    len = strlen(json);
    buf = exact(json, len);
    msg = NULL;

    root = ngx_http_supportdesk_parse_batch(buf, len, "customers", &arr, &msg,
                                            NULL);

    array[0] = '\0';
    *elements = -1;

    if (root != NULL) {
        msg = NULL;

        if (arr.data != NULL) {
            memcpy(array, arr.data, arr.len);
            array[arr.len] = '\0';
        }

        list = json_object_get(root, "customers");

        if (json_is_array(list)) {
            *elements = (int) json_array_size(list);
        }

        json_decref(root);

    } else {
        tap_ok(arr.data == NULL, "batch: no array text without a tree");
    }

    free(buf);

    return msg;
}


static void
test_parse_batch(void)
{
    int    n;
    char  *p;

    tap_is(batch(" {\"x\":3, \"customers\" : [{\"a\":1}, 2 ,[]] } ", s2, &n),
           NULL, "batch: parsed");
    tap_is(s2, "[{\"a\":1}, 2 ,[]]", "batch: the array's text");
    tap_is_int(n, 0, "batch: the tree holds [] in its place");

    tap_is(batch("{\"\\u0063ustomers\":[1]}", s2, &n), NULL,
           "batch: an escaped key");
    tap_is(s2, "[1]", "batch: its array");

    tap_is(batch("{\"customers\":5}", s2, &n), NULL, "batch: not an array");
    tap_ok(s2[0] == '\0' && n == -1, "batch: then the tree holds it whole");

    tap_is(batch("{\"other\":[1]}", s2, &n), NULL, "batch: no such member");
    tap_ok(s2[0] == '\0', "batch: then no array text");

    tap_is(batch("{\"customers\":[1,]}", s2, &n), "body is not valid JSON",
           "batch: a trailing comma in the array");
    tap_is(batch("{\"customers\":[1] ", s2, &n), "body is not valid JSON",
           "batch: cut after the array");
    tap_is(batch("{\"customers\":[1]}x", s2, &n), "body is not valid JSON",
           "batch: garbage after the body");
    tap_is(batch("{\"customers\":[1],\"customers\":[2]}", s2, &n),
           "body has a duplicate key", "batch: the member twice");
    tap_is(batch("{\"customers\":[1],\"x\":1e400}", s2, &n),
           "body has a number out of range",
           "batch: the rest of the body is jansson's to judge");
    tap_is(batch("[{\"customers\":[1]}]", s2, &n),
           "body must be a JSON object", "batch: not an object");
    tap_is(batch(" ", s2, &n), "body is empty", "batch: empty");

    /* an element is parsed on its own: its errors are found then */
    tap_is(batch("{\"customers\":[{\"a\":1e400}]}", s2, &n), NULL,
           "batch: an element's number is not looked at here");

    /* nested too deeply as a whole, though not as an element alone */
    p = repeat(s1, "{\"customers\":[", 1);
    p = nest(p, "[", "1", "]", JSON_PARSER_MAX_DEPTH - 1);
    repeat(p, "]}", 1);
    tap_is(batch(s1, s2, &n), "body is nested too deeply",
           "batch: an element at depth 2049");

    p = repeat(s1, "{\"customers\":[", 1);
    p = nest(p, "[", "1", "]", JSON_PARSER_MAX_DEPTH - 2);
    repeat(p, "]}", 1);
    tap_is(batch(s1, s2, &n), NULL, "batch: an element at depth 2048");
}
