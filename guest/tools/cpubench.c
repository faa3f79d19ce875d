/*
 * cpubench: a deterministic, CPU-bound integer benchmark for the guest.
 *
 *   cpubench [ITERATIONS]
 *
 * Each iteration fills a buffer from a PRNG seeded by the running checksum,
 * then runs four kernels over it: a table-driven CRC32, an integer quicksort,
 * a small integer matrix multiply and an open-addressing hash table of
 * integers (inserts, hits and misses). Every result is folded into the
 * checksum, which also seeds the next iteration, so no iteration can be
 * skipped or reordered. No floating point, no clocks, no libc sorting or
 * hashing: the work done, and so the guest instruction count and the
 * printed checksum, depend only on ITERATIONS.
 *
 * Prints exactly one line, "cpubench: iterations=N checksum=0x%016x", and
 * exits 0 (2 on a bad argument). The default ITERATIONS takes about one
 * second under qemu-system-riscv64 (about 2e9 guest instructions).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  kDefaultIterations = 3000,
  kWords = 4096,        /* PRNG buffer, 16 KiB */
  kSortWords = 1024,    /* prefix of the buffer that gets sorted */
  kMatrixN = 24,        /* kMatrixN x kMatrixN uint32 matrices */
  kTableSlots = 4096,   /* hash table capacity, a power of two */
  kTableKeys = 2048,    /* keys inserted per iteration (load 0.5) */
};

static uint32_t buffer[kWords];
static uint32_t sorted[kSortWords];
static uint32_t mat_a[kMatrixN][kMatrixN], mat_b[kMatrixN][kMatrixN];
static uint32_t mat_c[kMatrixN][kMatrixN];
static uint32_t table_keys[kTableSlots];
static uint32_t table_values[kTableSlots];
static uint32_t crc_table[256];

static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= UINT64_C(0xbf58476d1ce4e5b9);
  x ^= x >> 27;
  x *= UINT64_C(0x94d049bb133111eb);
  x ^= x >> 31;
  return x;
}

static void fill(uint64_t seed) {
  uint64_t s = seed | 1; /* xorshift64 must not start at zero */
  for (int i = 0; i < kWords; i++) {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    buffer[i] = (uint32_t)(s >> 16);
  }
}

static void crc32_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

static uint32_t crc32(const uint8_t *p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

static void insertion_sort(uint32_t *a, int n) {
  for (int i = 1; i < n; i++) {
    uint32_t v = a[i];
    int j = i - 1;
    while (j >= 0 && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
}

static void quicksort(uint32_t *a, int n) {
  while (n > 16) {
    uint32_t x = a[0], y = a[n / 2], z = a[n - 1]; /* median of three */
    uint32_t pivot = x < y ? (y < z ? y : (x < z ? z : x))
                           : (x < z ? x : (y < z ? z : y));
    int i = 0, j = n - 1;
    for (;;) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i >= j) break;
      uint32_t t = a[i];
      a[i] = a[j];
      a[j] = t;
      i++;
      j--;
    }
    /* Recurse into the smaller half, loop on the larger. */
    int left = j + 1;
    if (left < n - left) {
      quicksort(a, left);
      a += left;
      n -= left;
    } else {
      quicksort(a + left, n - left);
      n = left;
    }
  }
  insertion_sort(a, n);
}

static uint64_t sort_kernel(void) {
  memcpy(sorted, buffer, sizeof sorted);
  quicksort(sorted, kSortWords);
  uint64_t h = 0;
  for (int i = 0; i < kSortWords; i++) {
    if (i > 0 && sorted[i - 1] > sorted[i]) abort(); /* a broken CPU, not a result */
    h = h * 31 + sorted[i];
  }
  return h;
}

static uint64_t matrix_kernel(void) {
  for (int i = 0; i < kMatrixN; i++)
    for (int j = 0; j < kMatrixN; j++) {
      mat_a[i][j] = buffer[i * kMatrixN + j];
      mat_b[i][j] = buffer[kWords - 1 - (i * kMatrixN + j)];
    }
  for (int i = 0; i < kMatrixN; i++)
    for (int j = 0; j < kMatrixN; j++) {
      uint32_t sum = 0;
      for (int k = 0; k < kMatrixN; k++) sum += mat_a[i][k] * mat_b[k][j];
      mat_c[i][j] = sum;
    }
  uint64_t h = 0;
  for (int i = 0; i < kMatrixN; i++) h = mix64(h ^ mat_c[i][(i * 7) % kMatrixN]);
  return h;
}

static uint32_t slot_of(uint32_t key) {
  return (uint32_t)(mix64(key) & (kTableSlots - 1));
}

/* Key 0 marks an empty slot, so keys are forced odd. */
static uint64_t hash_kernel(void) {
  memset(table_keys, 0, sizeof table_keys);
  for (int i = 0; i < kTableKeys; i++) {
    uint32_t key = buffer[i] | 1;
    uint32_t s = slot_of(key);
    while (table_keys[s] != 0 && table_keys[s] != key) s = (s + 1) & (kTableSlots - 1);
    table_keys[s] = key;
    table_values[s] = (uint32_t)i;
  }
  uint64_t found = 0, missing = 0, sum = 0;
  for (int i = 0; i < 2 * kTableKeys; i++) {
    uint32_t key = (i & 1) ? buffer[i / 2] | 1 : buffer[kWords - 1 - i / 2] & ~1u;
    uint32_t s = slot_of(key);
    while (table_keys[s] != 0 && table_keys[s] != key) s = (s + 1) & (kTableSlots - 1);
    if (table_keys[s] == key) {
      found++;
      sum += table_values[s];
    } else {
      missing++;
    }
  }
  return mix64(found << 32 ^ missing ^ sum << 20);
}

int main(int argc, char **argv) {
  unsigned long long iterations = kDefaultIterations;
  if (argc > 2) {
    fputs("usage: cpubench [ITERATIONS]\n", stderr);
    return 2;
  }
  if (argc == 2) {
    char *end = NULL;
    iterations = strtoull(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0' || argv[1][0] == '-') {
      fputs("usage: cpubench [ITERATIONS]\n", stderr);
      return 2;
    }
  }

  crc32_init();
  uint64_t checksum = UINT64_C(0x6674766d2d637075); /* "ftvm-cpu" */
  for (unsigned long long it = 0; it < iterations; it++) {
    fill(checksum);
    checksum = mix64(checksum ^ crc32((const uint8_t *)buffer, sizeof buffer));
    checksum = mix64(checksum ^ sort_kernel());
    checksum = mix64(checksum ^ matrix_kernel());
    checksum = mix64(checksum ^ hash_kernel());
  }
  printf("cpubench: iterations=%llu checksum=0x%016" PRIx64 "\n", iterations, checksum);
  return 0;
}
