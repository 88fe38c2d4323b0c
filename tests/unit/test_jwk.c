/* hb_key_jwk: the public JWK of fixed ES256 keys against coordinates read in advance with
 * `openssl ec -text` (the "pub:" point 04 || X || Y) and encoded with `basenc --base64url`;
 * an HMAC secret is never exported. */
#include "keyring.h"
#include "testing.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* openssl ecparam -name prime256v1 -genkey -noout */
static const char key_a[] = "-----BEGIN EC PRIVATE KEY-----\n"
                            "MHcCAQEEILWLwpMDGJwm/n0OBHH2WK1RND8G92KSR9GfAuSzJ1CAoAoGCCqGSM49\n"
                            "AwEHoUQDQgAEIDMc9wHyt5Qaz6uUchRpnwkGIMdnB5cQY0Rc+l7MGyQHFyzeFIua\n"
                            "g4SNZze3LW2OkGyWy3ORTQZ7DWH4xCJUcQ==\n"
                            "-----END EC PRIVATE KEY-----\n";
/* openssl ec -text: X = 20331cf701f2b7941acfab947214699f090620c76707971063445cfa5ecc1b24,
 *                   Y = 07172cde148b9a83848d6737b72d6d8e906c96cb73914d067b0d61f8c4225471 */
static const char key_a_x[] = "IDMc9wHyt5Qaz6uUchRpnwkGIMdnB5cQY0Rc-l7MGyQ";
static const char key_a_y[] = "Bxcs3hSLmoOEjWc3ty1tjpBslstzkU0Gew1h-MQiVHE";

/* A key whose X starts with a zero byte: the coordinate must stay 32 bytes. */
static const char key_z[] = "-----BEGIN EC PRIVATE KEY-----\n"
                            "MHcCAQEEIPi6iSvdu10wDUGx41Y/dXghblTlvRzKs/qB25uwN6ttoAoGCCqGSM49\n"
                            "AwEHoUQDQgAEADMedtuodGgaWPorSeq20XEKLExucaBtuMATuNuD2W9ZFBYgqTr4\n"
                            "2em0QqoMtPkEZXjfgIC0vG116pw7tC2Azg==\n"
                            "-----END EC PRIVATE KEY-----\n";
static const char key_z_public[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEADMedtuodGgaWPorSeq20XEKLExu\n"
    "caBtuMATuNuD2W9ZFBYgqTr42em0QqoMtPkEZXjfgIC0vG116pw7tC2Azg==\n"
    "-----END PUBLIC KEY-----\n";
/* X = 00331e76dba874681a58fa2b49eab6d1710a2c4c6e71a06db8c013b8db83d96f,
 * Y = 59141620a93af8d9e9b442aa0cb4f9046578df8080b4bc6d75ea9c3bb42d80ce */
static const char key_z_x[] = "ADMedtuodGgaWPorSeq20XEKLExucaBtuMATuNuD2W8";
static const char key_z_y[] = "WRQWIKk6-NnptEKqDLT5BGV434CAtLxtdeqcO7QtgM4";

static char dir[64];

static void load_text(struct hb_key *key, const char *kid, const char *text)
{
    char path[128], err[256];
    snprintf(path, sizeof(path), "%s/%s", dir, kid);
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    bool ok = hb_key_load(key, kid, path, err, sizeof(err));
    unlink(path);
    if (!ok) {
        fprintf(stderr, "loading %s: %s\n", kid, err);
        exit(1);
    }
}

static const char *member(const cJSON *jwk, const char *name)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(jwk, name);
    return cJSON_IsString(m) ? m->valuestring : "(absent)";
}

/* Loads text as kid and checks its JWK member by member: exactly the seven public ones. */
static void check_jwk(const char *kid, const char *text, const char *x, const char *y)
{
    struct hb_key key;
    load_text(&key, kid, text);
    char err[256] = "";
    cJSON *jwk = hb_key_jwk(&key, err, sizeof(err));
    CHECK(jwk != NULL);
    if (jwk != NULL) {
        CHECK_STR(member(jwk, "kid"), kid);
        CHECK_STR(member(jwk, "kty"), "EC");
        CHECK_STR(member(jwk, "crv"), "P-256");
        CHECK_STR(member(jwk, "x"), x);
        CHECK_STR(member(jwk, "y"), y);
        CHECK_STR(member(jwk, "use"), "sig");
        CHECK_STR(member(jwk, "alg"), "ES256");
        CHECK_INT(cJSON_GetArraySize(jwk), 7); /* no "d": the private scalar never leaves */
    }
    cJSON_Delete(jwk);
    hb_key_finish(&key);
}

static void test_jwk_of_private_key_matches_openssl(void)
{
    check_jwk("hb-2025-06", key_a, key_a_x, key_a_y);
}

static void test_jwk_keeps_leading_zero_byte_of_coordinate(void)
{
    CHECK_INT(strlen(key_z_x), 43); /* 32 bytes, unpadded */
    check_jwk("z", key_z, key_z_x, key_z_y);
}

static void test_jwk_of_public_key_equals_private_keys(void)
{
    check_jwk("z.pub", key_z_public, key_z_x, key_z_y);
}

static void test_jwk_of_hmac_secret_is_refused(void)
{
    struct hb_key key;
    load_text(&key, "s1", "0123456789abcdef0123456789abcdef-secret\n");
    char err[256] = "";
    cJSON *jwk = hb_key_jwk(&key, err, sizeof(err));
    CHECK(jwk == NULL);
    CHECK_STR(err, "key 's1' is an HMAC secret: never published");
    cJSON_Delete(jwk);
    hb_key_finish(&key);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/hb-test-jwk-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_jwk_of_private_key_matches_openssl);
    RUN(test_jwk_keeps_leading_zero_byte_of_coordinate);
    RUN(test_jwk_of_public_key_equals_private_keys);
    RUN(test_jwk_of_hmac_secret_is_refused);
    rmdir(dir);
    return TESTING_DONE();
}
