/* Exercises libsamix through its public header from plain C (compiled and run by
 * tests/python/test_abi.py). Exit status 0 = all checks passed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "samix.h"

static int failures = 0;
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n",        \
                    __FILE__, __LINE__, #cond, samix_last_error());              \
            failures++;                                                          \
        }                                                                        \
    } while (0)

static void *thread_main(void *arg) {
    long k = (long)arg;
    char want[64];
    snprintf(want, sizeof want, "got -%ld", k);
    for (int i = 0; i < 2000; i++) {
        samix_status s = samix_set_num_threads(-k);
        if (s != SAMIX_E_INVALID_ARGUMENT || strstr(samix_last_error(), want) == NULL) return (void *)1;
        if (samix_last_error_code() != SAMIX_E_INVALID_ARGUMENT) return (void *)1;
    }
    return NULL;
}

int main(void) {
    CHECK(samix_abi_version() == SAMIX_ABI_VERSION);
    CHECK(strlen(samix_version()) > 0);
    CHECK(strlen(samix_blas_info()) > 0);
    int64_t threads = samix_get_num_threads();
    CHECK(threads >= 1);
    CHECK(samix_set_num_threads(0) == SAMIX_E_INVALID_ARGUMENT);
    CHECK(strstr(samix_last_error(), "samix_set_num_threads") != NULL);
    samix_clear_error();
    CHECK(strcmp(samix_last_error(), "") == 0 && samix_last_error_code() == 0);
    CHECK(samix_set_num_threads(threads) == SAMIX_OK);

    /* Handles: create, query, misuse, free, use after free. */
    int64_t live0 = samix_live_handles(SAMIX_KIND_ANY);
    uint8_t pixels[2 * 1 * 2 * 3] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    int64_t labels[2] = {1, 0};
    samix_handle ds = 0;
    CHECK(samix_dataset_create(pixels, labels, 2, 1, 2, 3, 2, &ds) == SAMIX_OK);
    CHECK(ds != 0);
    CHECK(samix_handle_kind(ds) == SAMIX_KIND_DATASET);
    CHECK(samix_live_handles(SAMIX_KIND_DATASET) >= 1);
    int64_t shape[5] = {0};
    CHECK(samix_dataset_shape(ds, shape) == SAMIX_OK);
    CHECK(shape[0] == 2 && shape[1] == 1 && shape[2] == 2 && shape[3] == 3 && shape[4] == 2);
    uint8_t back[12];
    int64_t back_labels[2];
    CHECK(samix_dataset_copy(ds, back, 12, back_labels, 2) == SAMIX_OK);
    CHECK(memcmp(back, pixels, 12) == 0 && back_labels[0] == 1 && back_labels[1] == 0);
    CHECK(samix_dataset_copy(ds, back, 11, back_labels, 2) == SAMIX_E_SHAPE);
    CHECK(samix_dataset_shape(ds, NULL) == SAMIX_E_NULL_POINTER);
    int64_t bad_labels[2] = {1, 2};
    samix_handle ds2 = 0;
    CHECK(samix_dataset_create(pixels, bad_labels, 2, 1, 2, 3, 2, &ds2) == SAMIX_E_INVALID_ARGUMENT);
    CHECK(samix_dataset_create(pixels, labels, -1, 1, 2, 3, 2, &ds2) == SAMIX_E_SHAPE);
    CHECK(samix_dataset_create(pixels, labels, 1LL << 40, 1LL << 40, 2, 3, 2, &ds2) == SAMIX_E_INVALID_ARGUMENT);
    CHECK(samix_dataset_create(NULL, labels, 2, 1, 2, 3, 2, &ds2) == SAMIX_E_NULL_POINTER);
    CHECK(samix_dataset_free(ds) == SAMIX_OK);
    CHECK(samix_dataset_free(ds) == SAMIX_E_INVALID_HANDLE);
    CHECK(samix_dataset_shape(ds, shape) == SAMIX_E_INVALID_HANDLE);
    CHECK(samix_dataset_shape(0, shape) == SAMIX_E_INVALID_HANDLE);
    CHECK(samix_dataset_shape(0xdeadbeefULL, shape) == SAMIX_E_INVALID_HANDLE);
    CHECK(samix_handle_kind(ds) == 0);
    CHECK(samix_live_handles(SAMIX_KIND_ANY) == live0);
    CHECK(samix_live_handles(99) == -1);

    /* Loading from a missing directory is an I/O error, not a crash. */
    samix_handle ds3 = 0;
    CHECK(samix_dataset_load("/nonexistent/samix", 0, "auto", 0, &ds3) == SAMIX_E_IO);
    CHECK(samix_dataset_load(NULL, 0, "auto", 0, &ds3) == SAMIX_E_NULL_POINTER);
    CHECK(samix_dataset_load("/tmp", 2, "auto", 0, &ds3) == SAMIX_E_INVALID_ARGUMENT);
    CHECK(samix_dataset_load("/tmp", 0, "nope", 0, &ds3) == SAMIX_E_INVALID_ARGUMENT);

    /* The last-error message is per thread. */
    pthread_t t[4];
    for (long k = 0; k < 4; k++) pthread_create(&t[k], NULL, thread_main, (void *)(k + 1));
    for (int k = 0; k < 4; k++) {
        void *r = NULL;
        pthread_join(t[k], &r);
        CHECK(r == NULL);
    }
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
