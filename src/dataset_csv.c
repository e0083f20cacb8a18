/* Source csv: the points of one comma-separated text file, in file order.
 *
 * Each row is one point: the features, then one target, so a network trained on a
 * CSV file has one output. Fields are numbers in the C locale (strtod), with optional
 * spaces or tabs around them; quoting is not supported. Blank lines and lines whose
 * first non-blank character is '#' are skipped. The first remaining line is a header
 * when one of its fields is neither empty nor a number. Reading stops after the last
 * row the run uses, so later lines are not checked. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_internal.h"

/* Characters of a field quoted in a message; longer fields are cut. */
enum { QUOTED_FIELD_CHARS = 40 };

/* Room for the text of sgk_file_request_describe. */
enum { REQUEST_TEXT_BYTES = 256 };

/* State of one pass over the file. `fields` points into `line`. */
typedef struct {
    const char *path;
    FILE *file;
    char *line;
    size_t line_capacity; /* bytes of `line`, managed by getline */
    long line_number;     /* 1-based number of the line in `line` */
    char **fields;
    int n_fields;
    int fields_capacity;
    int columns;      /* fields per row; 0 until the first row is read */
    long first_line;  /* line number of the first row, header or not */
    long header_line; /* line number of the header, or 0 without one */
    long rows_read;   /* data rows stored so far */
} csv_reader;

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Cut spaces, tabs and line-end characters from both ends of `text` in place. */
static char *trim(char *text)
{
    while (is_blank(*text)) text++;
    size_t length = strlen(text);
    while (length > 0 && is_blank(text[length - 1])) text[--length] = '\0';
    return text;
}

/* Whether the whole of `text` (already trimmed, not empty) is one number. */
static int parse_number(const char *text, double *value)
{
    char *end;

    if (text[0] == '\0') return 0;
    *value = strtod(text, &end);
    return *end == '\0';
}

/* Split `line` at commas, in place, into trimmed fields. */
static sgk_status split_fields(csv_reader *reader, char *line)
{
    reader->n_fields = 0;
    for (char *field = line;;) {
        char *comma = strchr(field, ',');
        if (comma) *comma = '\0';

        if (reader->n_fields == reader->fields_capacity) {
            int capacity = reader->fields_capacity > 0 ? 2 * reader->fields_capacity : 64;
            char **grown = realloc(reader->fields, (size_t)capacity * sizeof *grown);
            if (!grown)
                return sgk_error(SGK_ERR_IO,
                                 "out of memory for the fields of line %ld of CSV "
                                 "file '%s'",
                                 reader->line_number, reader->path);
            reader->fields = grown;
            reader->fields_capacity = capacity;
        }
        reader->fields[reader->n_fields++] = trim(field);

        if (!comma) return SGK_OK;
        field = comma + 1;
    }
}

/* Read lines until one contains a row, and split it into fields. `*found` is 0 at the
 * end of the file. */
static sgk_status next_row(csv_reader *reader, int *found)
{
    ssize_t length;

    *found = 0;
    errno = 0;
    while ((length = getline(&reader->line, &reader->line_capacity, reader->file)) >= 0) {
        char *text = reader->line;
        reader->line_number++;

        /* A UTF-8 byte order mark, which spreadsheet programs write, is not data. */
        if (reader->line_number == 1 && strncmp(text, "\xEF\xBB\xBF", 3) == 0) text += 3;
        while (is_blank(*text)) text++;
        if (*text == '\0' || *text == '#') continue;

        *found = 1;
        return split_fields(reader, text);
    }

    if (ferror(reader->file))
        return sgk_error(SGK_ERR_IO, "reading CSV file '%s' failed after line %ld: %s",
                         reader->path, reader->line_number, strerror(errno));
    return SGK_OK;
}

/* Whether the current row has a field that is neither empty nor a number. */
static int row_is_header(const csv_reader *reader)
{
    double value;

    for (int k = 0; k < reader->n_fields; k++) {
        if (reader->fields[k][0] != '\0' && !parse_number(reader->fields[k], &value)) return 1;
    }
    return 0;
}

/* Take the column count from the first row, detect a header and allocate the set. */
static sgk_status start_table(csv_reader *reader, const sgk_file_request *request,
                              sgk_dataset *data)
{
    reader->columns = reader->n_fields;
    reader->first_line = reader->line_number;
    if (reader->columns < 2)
        return sgk_error(SGK_ERR_DATA,
                         "CSV file '%s' line %ld has 1 column; a row needs at "
                         "least 2, the features and then the target",
                         reader->path, reader->line_number);
    if (row_is_header(reader)) reader->header_line = reader->line_number;

    return sgk_dataset_alloc(data, request->n_train, request->n_test, request->n_ood,
                             reader->columns - 1, 1);
}

static sgk_status check_column_count(const csv_reader *reader)
{
    if (reader->n_fields == reader->columns) return SGK_OK;
    return sgk_error(SGK_ERR_DATA,
                     "CSV file '%s' line %ld has %d columns, but line %ld (%s) "
                     "has %d; every row needs the same number of comma-separated fields",
                     reader->path, reader->line_number, reader->n_fields, reader->first_line,
                     reader->header_line ? "the header" : "the first row", reader->columns);
}

/* Parse the current row into row `row` of `data`: features, then the target. */
static sgk_status store_row(const csv_reader *reader, long row, sgk_dataset *data)
{
    int d = data->n_features;

    for (int k = 0; k < reader->n_fields; k++) {
        const char *field = reader->fields[k];
        double value;

        if (field[0] == '\0')
            return sgk_error(SGK_ERR_DATA,
                             "CSV file '%s' line %ld, column %d is empty; every "
                             "field after the header must be a number",
                             reader->path, reader->line_number, k + 1);
        if (!parse_number(field, &value))
            return sgk_error(SGK_ERR_DATA,
                             "CSV file '%s' line %ld, column %d: '%.*s' is not a "
                             "number; every field after the header must be a number",
                             reader->path, reader->line_number, k + 1, QUOTED_FIELD_CHARS, field);
        if (!isfinite(value))
            return sgk_error(SGK_ERR_DATA,
                             "CSV file '%s' line %ld, column %d: '%.*s' is not "
                             "finite; every value must be a finite number",
                             reader->path, reader->line_number, k + 1, QUOTED_FIELD_CHARS, field);
        if (k < d)
            data->x[(size_t)row * (size_t)d + (size_t)k] = value;
        else
            data->y[row] = value;
    }
    data->source_index[row] = reader->rows_read;
    return SGK_OK;
}

static sgk_status too_few_rows(const csv_reader *reader, const sgk_file_request *request,
                               long needed)
{
    char counts[REQUEST_TEXT_BYTES];

    if (reader->columns == 0)
        return sgk_error(SGK_ERR_DATA,
                         "CSV file '%s' has no rows: it is empty or has only "
                         "blank and # comment lines; source csv needs one row per point, the "
                         "features and then the target",
                         reader->path);

    sgk_file_request_describe(request, counts, sizeof counts);
    if (reader->rows_read == 0 && reader->header_line > 0)
        return sgk_error(SGK_ERR_DATA,
                         "CSV file '%s' has a header (line %ld) but no data "
                         "rows; the run needs %ld (%s)",
                         reader->path, reader->header_line, needed, counts);
    return sgk_error(SGK_ERR_DATA,
                     "CSV file '%s' has %ld data rows, but the run needs %ld (%s), "
                     "taken in file order; lower these counts or add rows to the file",
                     reader->path, reader->rows_read, needed, counts);
}

/* Steps of sgk_dataset_read_csv on an open file; the caller closes it. */
static sgk_status read_rows(csv_reader *reader, const sgk_file_request *request, sgk_dataset *data)
{
    long needed = request->n_train + request->n_test;
    if (request->ood_origin == SGK_FILE_OOD_TEST) needed += request->n_ood;

    while (reader->rows_read < needed) {
        int found;
        SGK_CHECK(next_row(reader, &found));
        if (!found) break;

        if (reader->columns == 0) {
            SGK_CHECK(start_table(reader, request, data));
            if (reader->header_line > 0) continue;
        }
        SGK_CHECK(check_column_count(reader));
        SGK_CHECK(store_row(reader, reader->rows_read, data));
        reader->rows_read++;
    }

    if (reader->rows_read < needed) return too_few_rows(reader, request, needed);
    return SGK_OK;
}

sgk_status sgk_dataset_read_csv(const char *path, const sgk_file_request *request,
                                sgk_dataset *data)
{
    csv_reader reader = { .path = path };

    memset(data, 0, sizeof *data);
    if (request->ood_origin == SGK_FILE_OOD_SPLIT)
        return sgk_error(SGK_ERR_USAGE,
                         "CSV file '%s' has no split column, so it marks no "
                         "ood points; use ood = noise or shift:SCALE, or source netcdf with a "
                         "split variable",
                         path);

    reader.file = fopen(path, "r");
    if (!reader.file)
        return sgk_error(SGK_ERR_DATA,
                         "cannot open CSV file '%s': %s; data.path must name a "
                         "CSV file with one point per line",
                         path, strerror(errno));

    sgk_status status = read_rows(&reader, request, data);
    fclose(reader.file);
    free(reader.line);
    free(reader.fields);
    if (status != SGK_OK) sgk_dataset_free(data);
    return status;
}
