/* hb-api's request input, checked without I/O: which route a method and path name, and a JSON
 * body's fields, refused with a stable error name and the field at fault. Nothing is truncated:
 * a value that does not fit or is outside the id alphabet is refused, and so is a string that
 * hides a NUL (cJSON's C strings would end there). */
#ifndef HB_API_INPUT_H
#define HB_API_INPUT_H

#include "ids.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

enum api_route {
    API_ROUTE_NONE = 0, /* no such path: 404 */
    API_ROUTE_HEALTHZ,
    API_ROUTE_METRICS,
    API_ROUTE_PLAYS,          /* /v1/plays */
    API_ROUTE_PLAY,           /* /v1/plays/{account}/{device} */
    API_ROUTE_ACCOUNT,        /* /v1/accounts/{account} */
    API_ROUTE_ACCOUNT_LIMITS, /* /v1/accounts/{account}/limits */
    API_ROUTE_TOKENS,         /* /v1/tokens */
    API_ROUTE_WEB,            /* pages and static files (--web-root) */
    API_ROUTE_DEMO,           /* /demo/... (--demo-backend) */
    API_ROUTE_JWKS,           /* /.well-known/jwks.json */
    API_ROUTE_COUNT
};

/* The endpoint names of the metrics, one per route ("other" for NONE). */
const char *api_route_name(enum api_route r);

/* The one method a route answers ("GET" also answers HEAD). */
const char *api_route_method(enum api_route r);

/* Why input was refused; names are the "error" of the reply and a metrics label. */
enum api_bad {
    API_BAD_NONE = 0,
    API_BAD_NOT_FOUND,
    API_BAD_METHOD,
    API_BAD_UNAUTHORIZED,
    API_BAD_MEDIA_TYPE,
    API_BAD_TOO_LARGE,
    API_BAD_MALFORMED_JSON,
    API_BAD_NUL,
    API_BAD_UNKNOWN_FIELD,
    API_BAD_MISSING_FIELD,
    API_BAD_INVALID_FIELD,
    API_BAD_RATE_LIMITED, /* POST /v1/tokens beyond --rate-limit: 429 */
    API_BAD_COUNT
};

const char *api_bad_name(enum api_bad b);
int api_bad_status(enum api_bad b);

struct api_path {
    enum api_route route;
    char account[HB_ID_MAX + 1];
    char device[HB_ID_MAX + 1];
};

/* Splits path into a route and its ids. API_BAD_NONE on success; API_BAD_NOT_FOUND for an
 * unknown shape; API_BAD_INVALID_FIELD with *field "account" or "device" when a segment of a
 * known shape is not an id. */
enum api_bad api_path_parse(const char *path, struct api_path *out, const char **field);

/* Parses body[0..len) (body[len] must be a NUL) as a JSON object. Refuses (with *field when known)
 * a body that is not exactly one object, holds a raw NUL byte, or a string with the escape \u0000
 * (*field is the member it was found in). *out is the tree the caller deletes. */
enum api_bad api_json_parse(const char *body, size_t len, cJSON **out, const char **field);

/* Refuses members of obj not named in allowed (NULL-terminated); *field is the first such
 * member's name (borrowed from obj). */
enum api_bad api_json_only(const cJSON *obj, const char *const *allowed, const char **field);

/* Reads member name of obj as an id into out (HB_ID_MAX + 1 bytes). Absent or null: out is ""
 * and it is refused as missing only when required. Not a string, empty, too long or outside
 * the alphabet: API_BAD_INVALID_FIELD. *field is name on any refusal. */
enum api_bad api_json_id(const cJSON *obj, const char *name, bool required, char *out,
                         const char **field);

/* Reads member name as a whole number in [min, max]; absent or null: *out = dflt (or missing
 * when required). */
enum api_bad api_json_long(const cJSON *obj, const char *name, bool required, long min, long max,
                           long dflt, long *out, const char **field);

#endif
