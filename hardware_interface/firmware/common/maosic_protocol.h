/* MAOSIC line protocol: framing, checksum and duplicate suppression (see docs/firmware_protocol.md).
 * C99, no heap. A board feeds received bytes to mp_feed(); when a line is complete the library
 * parses it, calls the board's dispatch function and writes the reply through the board's
 * write callback. */
#ifndef MAOSIC_PROTOCOL_H
#define MAOSIC_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define MP_MAX_LINE 64
#define MP_MAX_ARGS 6
#define MP_MAX_REPLY 96

enum mp_error {
  MP_OK = 0,
  MP_ERR_UNKNOWN_COMMAND = 1,
  MP_ERR_BAD_ARGUMENT = 2,
  MP_ERR_OUT_OF_RANGE = 3,
  MP_ERR_BUSY = 4,
  MP_ERR_CHECKSUM = 5,
  MP_ERR_HARDWARE_FAULT = 6,
  MP_ERR_NOT_READY = 7
};

typedef struct {
  const char *cmd;             /* command word, e.g. "INF" */
  const char *args[MP_MAX_ARGS];
  int argc;
} mp_request;

/* The board's reply builder: handlers append values with mp_reply_* and return an mp_error
 * (and, for an error, set the text with mp_reply_error_text). */
#define MP_MAX_ERROR_TEXT 48

typedef struct {
  char buf[MP_MAX_REPLY];
  size_t len;
  const char *error_text;
  char text[MP_MAX_ERROR_TEXT]; /* room for an error text built with mp_error_* */
  size_t text_len;
} mp_reply;

typedef int (*mp_dispatch_fn)(const mp_request *req, mp_reply *out);
typedef void (*mp_write_fn)(const char *data, size_t len);

typedef struct {
  char line[MP_MAX_LINE + 1];
  size_t line_len;
  uint8_t overflow;
  char last_request[MP_MAX_LINE + 1];
  char last_reply[MP_MAX_REPLY + 16];
  size_t last_reply_len;
  mp_dispatch_fn dispatch;
  mp_write_fn write;
} mp_state;

void mp_init(mp_state *s, mp_dispatch_fn dispatch, mp_write_fn write);
void mp_feed(mp_state *s, const char *data, size_t len);
uint8_t mp_checksum(const char *data, size_t len);

void mp_reply_word(mp_reply *out, const char *word);
void mp_reply_fixed(mp_reply *out, int32_t value_milli, int decimals); /* value x 1000 */
void mp_reply_error_text(mp_reply *out, const char *text);
int mp_parse_fixed(const char *text, int32_t *value_milli);             /* returns 0 if ok */
/* The same with `places` decimal places (0-6): value = text x 10^places; digits past `places`
 * are ignored. mp_reply_decimal prints such a value with exactly `places` decimals. */
int mp_parse_decimal(const char *text, int places, int32_t *value);
void mp_reply_decimal(mp_reply *out, int32_t value, int places);

/* Error texts that carry values, built piece by piece (they are cut at MP_MAX_ERROR_TEXT - 1).
 * mp_error_number writes `decimals` places, or with MP_SHORTEST the fewest places that keep the
 * value (at least one), which is how the host's emulators print a number they parsed. */
#define MP_SHORTEST (-1)
void mp_error_word(mp_reply *out, const char *text);
void mp_error_number(mp_reply *out, int32_t value_milli, int decimals);
/* The shared ER texts for an argument that is missing or not a number, and for an unknown
 * command; they return the error code to hand back from the dispatch function. */
int mp_error_argument(mp_reply *out, const mp_request *req, int index, const char *name);
int mp_error_unknown_command(mp_reply *out, const mp_request *req);
/* Parse argument `index` as fixed point; on failure set the shared ER 2 text and return it. */
int mp_arg_fixed(const mp_request *req, int index, const char *name, int32_t *value_milli,
                 mp_reply *out);

#endif
