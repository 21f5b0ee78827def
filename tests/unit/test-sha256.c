/* test-sha256.c — common/sha256.h against the FIPS 180-2 test vectors, one
 * shot and in pieces, and hex_encode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "common/sha256.h"

static const struct {
	const char *text, *hex;
} vectors[] = {
	{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
	{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
};

static void test_one_shot(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		char hex[SHA256_HEX];
		assert_int_equal(sha256_hex(vectors[i].text, strlen(vectors[i].text), hex), 0);
		assert_string_equal(hex, vectors[i].hex);
	}
}

static void test_in_pieces(void **state)
{
	(void)state;
	const char *t = vectors[2].text;
	size_t n = strlen(t);
	for (size_t cut = 0; cut <= n; cut += 7) {
		struct sha256 h;
		uint8_t d[SHA256_BYTES];
		char hex[SHA256_HEX];
		assert_int_equal(sha256_init(&h), 0);
		assert_int_equal(sha256_update(&h, t, cut), 0);
		assert_int_equal(sha256_update(&h, t + cut, n - cut), 0);
		assert_int_equal(sha256_final(&h, d), 0);
		assert_null(h.ctx);
		sha256_release(&h); /* after final: nothing left to free */
		hex_encode(d, sizeof(d), hex);
		assert_string_equal(hex, vectors[2].hex);
	}
	struct sha256 h;
	assert_int_equal(sha256_init(&h), 0);
	sha256_release(&h); /* an early exit frees the context */
}

static void test_hex_encode(void **state)
{
	(void)state;
	char out[9];
	hex_encode("\x00\x0f\xf0\xff", 4, out);
	assert_string_equal(out, "000ff0ff");
	hex_encode("", 0, out);
	assert_string_equal(out, "");
}

static void test_hex_decode(void **state)
{
	(void)state;
	unsigned char b[4];
	assert_int_equal(hex_decode("000fF0ff", 4, b), 0);
	assert_memory_equal(b, "\x00\x0f\xf0\xff", 4);
	assert_int_equal(hex_decode("0g", 1, b), -EINVAL);
	assert_int_equal(hex_decode(" 1", 1, b), -EINVAL);
	assert_int_equal(hex_value('a'), 10);
	assert_int_equal(hex_value('F'), 15);
	assert_int_equal(hex_value('9'), 9);
	assert_int_equal(hex_value('G'), -1);
	assert_int_equal(hex_value(0xe4), -1);
	char round[9];
	hex_encode(b, 4, round);
	assert_string_equal(round, "000ff0ff");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_shot),
		cmocka_unit_test(test_in_pieces),
		cmocka_unit_test(test_hex_encode),
		cmocka_unit_test(test_hex_decode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
