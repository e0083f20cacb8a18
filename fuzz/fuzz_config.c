/* libFuzzer target: the configuration reader of src/config.c.
 *
 * The input is an INI file for sgk_config_load_file. Each of its lines is also tried
 * as a command-line override (sgk_config_override), so one corpus covers both ways
 * into sgk_config_set. Besides the sanitizers' checks, the target aborts when one of
 * these documented contracts breaks:
 *  - every status is SGK_OK, SGK_ERR_USAGE or SGK_ERR_IO (out of memory), and every
 *    error records a message;
 *  - a file or an override that fails leaves the configuration unchanged;
 *  - the text of sgk_config_to_ini reads back to the same configuration, unless one
 *    of its lines is longer than the inih line limit, which the reader rejects. */
#define _GNU_SOURCE /* memfd_create */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sgk/config.h"
#include "fuzz_input.h"

/* Lines of the input tried as overrides; more add run time, not coverage. */
enum { MAX_OVERRIDES = 32 };

/* Maximum length of a line without its line break that Debian's inih 55 reads whole:
 * its 200-byte buffer, minus the line break and the terminating NUL. src/config.c
 * rejects longer lines. With an inih build of a smaller buffer, this check would
 * abort on valid text. */
enum { INIH_LINE_LIMIT = 198 };

static fuzz_file input_file;
static fuzz_file ini_file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_file_create(&input_file, "fuzz-config-input");
    fuzz_file_create(&ini_file, "fuzz-config-round-trip");
    return 0;
}

static void require_error_status(sgk_status status, const char *call)
{
    FUZZ_REQUIRE(status == SGK_ERR_USAGE || status == SGK_ERR_IO,
                 "%s returned status %d; configuration errors are SGK_ERR_USAGE (1), "
                 "out of memory SGK_ERR_IO (4)",
                 call, (int)status);
    FUZZ_REQUIRE(sgk_error_message()[0] != '\0', "%s failed without an error message", call);
}

/* Text of `config`, or abort: sgk_config_to_ini returns NULL only when out of
 * memory, and these inputs are small. */
static char *config_text(const sgk_config *config)
{
    char *text = sgk_config_to_ini(config);

    FUZZ_REQUIRE(text != NULL, "sgk_config_to_ini returned NULL");
    return text;
}

static int has_line_longer_than(const char *text, size_t limit)
{
    size_t length = 0;

    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            length = 0;
        } else if (++length > limit) {
            return 1;
        }
    }
    return 0;
}

/* Write `config` as INI text, read it back onto the defaults, and require the same
 * text from the result. Comparing the text, not the bytes of the structures, leaves
 * out padding and the unused bytes after each path's terminator. */
static void check_round_trip(const sgk_config *config)
{
    char *text = config_text(config);
    sgk_config reread;

    fuzz_file_write(&ini_file, text, strlen(text));
    sgk_config_defaults(&reread);
    sgk_status status = sgk_config_load_file(&reread, ini_file.path);
    if (status != SGK_OK) {
        FUZZ_REQUIRE(has_line_longer_than(text, INIH_LINE_LIMIT),
                     "the text of sgk_config_to_ini does not read back: %s\n--- text:\n%s",
                     sgk_error_message(), text);
        free(text);
        return;
    }

    char *again = config_text(&reread);
    FUZZ_REQUIRE(strcmp(text, again) == 0,
                 "sgk_config_to_ini text reads back to another configuration\n--- "
                 "written:\n%s--- read back and written again:\n%s",
                 text, again);
    free(again);
    free(text);
}

/* Require that `after`, the configuration after a failed call, equals `before`. Equal
 * bytes settle it quickly; otherwise the texts decide, because bytes after a path's
 * terminator may differ without changing the configuration. */
static void require_unchanged(const sgk_config *before, const sgk_config *after, const char *call)
{
    if (memcmp(before, after, sizeof *before) == 0) return;

    char *before_text = config_text(before);
    char *after_text = config_text(after);

    FUZZ_REQUIRE(strcmp(before_text, after_text) == 0,
                 "%s failed (%s) but changed the configuration", call, sgk_error_message());
    free(after_text);
    free(before_text);
}

/* Read the input as a file on top of the defaults. */
static void fuzz_file_input(const uint8_t *data, size_t size)
{
    sgk_config config;

    sgk_config_defaults(&config);
    sgk_config before = config;

    fuzz_file_write(&input_file, data, size);
    sgk_error_clear();
    sgk_status status = sgk_config_load_file(&config, input_file.path);
    if (status != SGK_OK) {
        require_error_status(status, "sgk_config_load_file");
        require_unchanged(&before, &config, "sgk_config_load_file");
        return;
    }

    status = sgk_config_validate(&config);
    if (status != SGK_OK) require_error_status(status, "sgk_config_validate");
    check_round_trip(&config);
}

/* Apply each input line as "section.key=value", in order, on one configuration. */
static void fuzz_override_input(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    sgk_config config;
    int applied = 0;

    if (!text) return;
    memcpy(text, data, size);
    text[size] = '\0';
    sgk_config_defaults(&config);

    char *line = text;
    for (int count = 0; count < MAX_OVERRIDES && line; count++) {
        char *newline = strchr(line, '\n');
        if (newline) *newline = '\0';

        sgk_config before = config;
        sgk_error_clear();
        sgk_status status = sgk_config_override(&config, line);
        if (status != SGK_OK) {
            require_error_status(status, "sgk_config_override");
            require_unchanged(&before, &config, "sgk_config_override");
        } else {
            applied++;
        }
        line = newline ? newline + 1 : NULL;
    }

    if (applied > 0) check_round_trip(&config);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_file_input(data, size);
    fuzz_override_input(data, size);
    return 0;
}
