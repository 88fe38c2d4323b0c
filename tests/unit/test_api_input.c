/* hb-api's input checks: routes from paths, ids in paths and bodies, and JSON bodies that
 * hide a NUL. */
/* Compiled in directly: the unit suite links the common library only. */
#include "../../api/input.c"
#include "testing.h"

#include <stdlib.h>

static void test_path_routes(void)
{
    struct api_path p;
    const char *field = NULL;
    CHECK_INT(api_path_parse("/v1/plays", &p, &field), API_BAD_NONE);
    CHECK_INT(p.route, API_ROUTE_PLAYS);
    CHECK_INT(api_path_parse("/v1/plays/acct.1/tv:2", &p, &field), API_BAD_NONE);
    CHECK_INT(p.route, API_ROUTE_PLAY);
    CHECK(strcmp(p.account, "acct.1") == 0 && strcmp(p.device, "tv:2") == 0);
    CHECK_INT(api_path_parse("/v1/accounts/a-b", &p, &field), API_BAD_NONE);
    CHECK_INT(p.route, API_ROUTE_ACCOUNT);
    CHECK_INT(api_path_parse("/v1/accounts/a-b/limits", &p, &field), API_BAD_NONE);
    CHECK_INT(p.route, API_ROUTE_ACCOUNT_LIMITS);
    CHECK(strcmp(p.account, "a-b") == 0);
    CHECK_INT(api_path_parse("/healthz", &p, &field), API_BAD_NONE);
    CHECK_INT(p.route, API_ROUTE_HEALTHZ);
}

static void test_path_refusals_name_the_segment(void)
{
    struct api_path p;
    const char *field = NULL;
    CHECK_INT(api_path_parse("/v1/plays/a!b/d", &p, &field), API_BAD_INVALID_FIELD);
    CHECK(field && strcmp(field, "account") == 0);
    CHECK_INT(api_path_parse("/v1/plays/a/", &p, &field), API_BAD_INVALID_FIELD);
    CHECK(field && strcmp(field, "device") == 0);
    CHECK_INT(api_path_parse("/v1/plays/a/b/c", &p, &field), API_BAD_NOT_FOUND);
    CHECK_INT(api_path_parse("/v1/plays/a", &p, &field), API_BAD_NOT_FOUND);
    CHECK_INT(api_path_parse("/v1/accounts/a/other", &p, &field), API_BAD_NOT_FOUND);
    CHECK_INT(api_path_parse("/v1/accounts//limits", &p, &field), API_BAD_INVALID_FIELD);
    CHECK_INT(api_path_parse("/v1/playsX", &p, &field), API_BAD_NOT_FOUND);
    char longid[100];
    memset(longid, 'x', 65);
    longid[65] = '\0';
    char path[200];
    snprintf(path, sizeof(path), "/v1/accounts/%s", longid);
    CHECK_INT(api_path_parse(path, &p, &field), API_BAD_INVALID_FIELD);
}

static enum api_bad parse(const char *text, const char **field)
{
    cJSON *json = NULL;
    enum api_bad bad = api_json_parse(text, strlen(text), &json, field);
    cJSON_Delete(json);
    return bad;
}

static void test_json_escaped_nul_refused_with_its_field(void)
{
    const char *field = NULL;
    CHECK_INT(parse("{\"account\":\"acctA\\u0000evil\"}", &field), API_BAD_NUL);
    CHECK(field && strcmp(field, "account") == 0);
    CHECK_INT(parse("{\"a\":\"x\",\"device\" : \"\\u0000\"}", &field), API_BAD_NUL);
    CHECK(field && strcmp(field, "device") == 0);
    /* An escaped backslash followed by u0000 is text, not a NUL. */
    CHECK_INT(parse("{\"account\":\"\\\\u0000\"}", &field), API_BAD_NONE);
    CHECK_INT(parse("{\"account\":\"\\u0001\"}", &field), API_BAD_NONE);
}

static void test_json_only_objects(void)
{
    const char *field = NULL;
    CHECK_INT(parse("[]", &field), API_BAD_MALFORMED_JSON);
    CHECK_INT(parse("{} x", &field), API_BAD_MALFORMED_JSON);
    CHECK_INT(parse("{\"a\":", &field), API_BAD_MALFORMED_JSON);
    CHECK_INT(parse("", &field), API_BAD_MALFORMED_JSON);
    CHECK_INT(parse(" {\"a\":1} ", &field), API_BAD_NONE);
    cJSON *json = NULL;
    CHECK_INT(api_json_parse("{\"a\":1}\0x", 9, &json, &field), API_BAD_MALFORMED_JSON);
}

static void test_json_fields(void)
{
    const char *field = NULL;
    cJSON *o = cJSON_Parse("{\"account\":\"a\",\"device\":\"bad id\",\"n\":2.5,\"m\":3}");
    char id[HB_ID_MAX + 1];
    long n = 0;
    CHECK_INT(api_json_id(o, "account", true, id, &field), API_BAD_NONE);
    CHECK(strcmp(id, "a") == 0);
    CHECK_INT(api_json_id(o, "device", true, id, &field), API_BAD_INVALID_FIELD);
    CHECK(strcmp(field, "device") == 0);
    CHECK_INT(api_json_id(o, "group", false, id, &field), API_BAD_NONE);
    CHECK(id[0] == '\0');
    CHECK_INT(api_json_id(o, "group", true, id, &field), API_BAD_MISSING_FIELD);
    CHECK_INT(api_json_long(o, "n", true, 0, 10, 0, &n, &field), API_BAD_INVALID_FIELD);
    CHECK_INT(api_json_long(o, "m", true, 0, 10, 0, &n, &field), API_BAD_NONE);
    CHECK_INT(n, 3);
    CHECK_INT(api_json_long(o, "m", true, 0, 2, 0, &n, &field), API_BAD_INVALID_FIELD);
    static const char *const allowed[] = {"account", "device", "n", NULL};
    CHECK_INT(api_json_only(o, allowed, &field), API_BAD_UNKNOWN_FIELD);
    CHECK(strcmp(field, "m") == 0);
    cJSON_Delete(o);
}

int main(void)
{
    RUN(test_path_routes);
    RUN(test_path_refusals_name_the_segment);
    RUN(test_json_escaped_nul_refused_with_its_field);
    RUN(test_json_only_objects);
    RUN(test_json_fields);
    return TESTING_DONE();
}
