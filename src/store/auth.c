/*
 * store: password hashing (yescrypt through libcrypt, a fresh salt from
 * crypt_gensalt_rn) and token text (random, hashed with SHA-256 before it
 * reaches the database). Decision: the caller hashes with
 * cx_store_password_hash and hands the store the hash string, so the slow
 * part never runs while a store connection is held.
 */
#include "store/store-int.h"

#include <crypt.h>
#include <errno.h>
#include <openssl/evp.h>
#include <string.h>

#define PASSWORD_MAX 1024

int cx_store_password_hash(const char *password, char *out, char *err)
{
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  unsigned char rnd[32];
  struct crypt_data *cd = NULL;
  int rc = 0;
  if (password == NULL || password[0] == '\0' ||
      strlen(password) > PASSWORD_MAX) {
    cx_err_set(err, "password: must be 1..%d bytes", PASSWORD_MAX);
    return -EINVAL;
  }
  rc = cx_random_bytes(rnd, sizeof rnd);
  if (rc != 0)
    goto err;
  if (crypt_gensalt_rn("$y$", 0, (const char *)rnd, sizeof rnd, salt,
                       sizeof salt) == NULL) {
    rc = errno ? -errno : -EINVAL;
    goto err;
  }
  cd = cx_calloc(1, sizeof *cd);
  if (cd == NULL) {
    rc = -ENOMEM;
    goto err;
  }
  const char *h = crypt_r(password, salt, cd);
  if (h == NULL || h[0] == '*' || strlen(h) >= CX_STORE_HASH_LEN) {
    rc = -EINVAL;
    goto err;
  }
  memcpy(out, h, strlen(h) + 1);
err:
  if (rc != 0)
    cx_err_set(err, "password: hashing failed: %s", cx_strerror(rc));
  cx_free(cd);
  return rc;
}

int cx_store_password_verify(const char *password, const char *hash)
{
  struct crypt_data *cd;
  int ok = 0;
  if (password == NULL || hash == NULL || hash[0] != '$' ||
      strlen(password) > PASSWORD_MAX)
    return 0;
  cd = cx_calloc(1, sizeof *cd);
  if (cd == NULL)
    return 0;
  const char *h = crypt_r(password, hash, cd);
  if (h != NULL && h[0] != '*') {
    size_t a = strlen(h), b = strlen(hash);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a && i < b; i++)
      diff |= (unsigned char)h[i] ^ (unsigned char)hash[i];
    ok = diff == 0;
  }
  cx_free(cd);
  return ok;
}

int cx_store_token_generate(char *out)
{
  return cx_random_hex(out, 32);
}

int cx__token_hash(const char *s, char out[65])
{
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL) != 1 || n != 32)
    return -EIO;
  cx_hex(md, n, out);
  return 0;
}

int cx__claim_token(char out[33])
{
  return cx_random_hex(out, 16);
}
