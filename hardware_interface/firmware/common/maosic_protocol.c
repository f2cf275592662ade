/* MAOSIC line protocol implementation, shared by the MSP1, MHB1 and MAB1 boards. */
#include "maosic_protocol.h"

#include <string.h>

static const char HEX[] = "0123456789ABCDEF";

uint8_t mp_checksum(const char *data, size_t len) {
  uint8_t cs = 0;
  for (size_t i = 0; i < len; i++) cs ^= (uint8_t)data[i];
  return cs;
}

void mp_init(mp_state *s, mp_dispatch_fn dispatch, mp_write_fn write) {
  memset(s, 0, sizeof(*s));
  s->dispatch = dispatch;
  s->write = write;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Frame `body` (tag already in it) with "*CS\n" and send it; keep a copy for retries. */
static void send_framed(mp_state *s, const char *body, size_t len, int cache) {
  char frame[MP_MAX_REPLY + 16];
  if (len > MP_MAX_REPLY) len = MP_MAX_REPLY;
  memcpy(frame, body, len);
  uint8_t cs = mp_checksum(body, len);
  frame[len++] = '*';
  frame[len++] = HEX[cs >> 4];
  frame[len++] = HEX[cs & 0x0F];
  frame[len++] = '\n';
  s->write(frame, len);
  if (cache) {
    memcpy(s->last_reply, frame, len);
    s->last_reply_len = len;
  }
}

static void send_error(mp_state *s, const char *tag, int code, const char *text, int cache) {
  char body[MP_MAX_REPLY];
  size_t n = 0;
  body[n++] = tag[0];
  body[n++] = tag[1];
  memcpy(body + n, " ER ", 4);
  n += 4;
  body[n++] = (char)('0' + code);
  body[n++] = ' ';
  for (const char *p = text; *p && n < MP_MAX_REPLY - 1; p++) body[n++] = (*p == '*') ? 'x' : *p;
  send_framed(s, body, n, cache);
}

static void handle_line(mp_state *s) {
  char *line = s->line;
  size_t len = s->line_len;
  if (len && line[len - 1] == '\r') line[--len] = '\0';
  char tag[2] = {'0', '0'};
  if (len >= 2 && line[0] >= '0' && line[0] <= '9' && line[1] >= '0' && line[1] <= '9') {
    tag[0] = line[0];
    tag[1] = line[1];
  }
  /* checksum: the last '*' separates the body from two hex digits */
  char *star = strrchr(line, '*');
  if (star == NULL || (size_t)(line + len - star) != 3) {
    send_error(s, tag, MP_ERR_CHECKSUM, "checksum", 0);
    return;
  }
  int hi = hex_value(star[1]), lo = hex_value(star[2]);
  size_t body_len = (size_t)(star - line);
  if (hi < 0 || lo < 0 || mp_checksum(line, body_len) != (uint8_t)(hi * 16 + lo)) {
    send_error(s, tag, MP_ERR_CHECKSUM, "checksum", 0);
    return;
  }
  /* A frame with a good checksum but no "TT CMD" shape, or bytes outside printable ASCII, is
   * as unusable as a corrupted one: the same ER 5, so the host retries it the same way. */
  int has_command = 0;
  for (size_t i = 3; i < body_len; i++) has_command |= line[i] != ' ';
  int printable = 1;
  for (size_t i = 0; i < body_len; i++) printable &= line[i] >= 0x20 && line[i] <= 0x7E;
  if (body_len < 4 || line[2] != ' ' || tag[0] != line[0] || tag[1] != line[1] ||
      !has_command || !printable) {
    send_error(s, tag, MP_ERR_CHECKSUM, "checksum", 0);
    return;
  }
  int is_resync = (tag[0] == '0' && tag[1] == '0');
  /* The host resent the identical line: answer from the cache, do not execute twice. */
  if (!is_resync && s->last_reply_len && strcmp(line, s->last_request) == 0) {
    s->write(s->last_reply, s->last_reply_len);
    return;
  }
  /* Keep the request as received before the parser below cuts it into words in place; a copy
   * taken afterwards would hold only the tag, and a resent motion command would run twice. */
  char received[MP_MAX_LINE + 1];
  memcpy(received, line, len + 1);
  *star = '\0';
  mp_request req = {0};
  char *p = line + 2;
  while (*p == ' ') p++;
  req.cmd = p;
  while (*p && *p != ' ') p++;
  while (*p) {
    *p++ = '\0';
    while (*p == ' ') p++;
    if (*p && req.argc < MP_MAX_ARGS) req.args[req.argc++] = p;
    while (*p && *p != ' ') p++;
  }
  mp_reply out = {{0}, 0, "error", {0}, 0};
  out.buf[out.len++] = tag[0];
  out.buf[out.len++] = tag[1];
  memcpy(out.buf + out.len, " OK", 3);
  out.len += 3;
  int code = s->dispatch(&req, &out);
  if (is_resync) {
    s->last_request[0] = '\0';
    s->last_reply_len = 0;
  } else {
    memcpy(s->last_request, received, len + 1);
  }
  if (code == MP_OK) {
    send_framed(s, out.buf, out.len, !is_resync);
  } else {
    send_error(s, tag, code, out.error_text, !is_resync);
  }
}

void mp_feed(mp_state *s, const char *data, size_t len) {
  for (size_t i = 0; i < len; i++) {
    char c = data[i];
    if (c == '\n') {
      if (!s->overflow) {
        s->line[s->line_len] = '\0';
        handle_line(s);
      }
      s->line_len = 0;
      s->overflow = 0;
    } else if (s->line_len < MP_MAX_LINE) {
      s->line[s->line_len++] = c;
    } else {
      s->overflow = 1; /* a runaway line is dropped whole, like the emulators do */
    }
  }
}

void mp_reply_word(mp_reply *out, const char *word) {
  if (out->len + 1 + strlen(word) >= MP_MAX_REPLY) return;
  out->buf[out->len++] = ' ';
  while (*word) out->buf[out->len++] = *word++;
}

void mp_reply_fixed(mp_reply *out, int32_t value_milli, int decimals) {
  static const int32_t SCALE[4] = {1000, 100, 10, 1};
  static const uint32_t POW10[4] = {1, 10, 100, 1000};
  if (decimals < 0) decimals = 0;
  if (decimals > 3) decimals = 3;
  int32_t scale = SCALE[decimals];
  /* round half away from zero to `decimals` places, as the host formats numbers */
  int32_t v = (value_milli >= 0 ? value_milli + scale / 2 : value_milli - scale / 2) / scale;
  uint32_t u = (uint32_t)(v < 0 ? -v : v);
  uint32_t ip = u / POW10[decimals], fp = u % POW10[decimals];
  char tmp[12], word[16];
  int n = 0, w = 0;
  do {
    tmp[n++] = (char)('0' + ip % 10);
    ip /= 10;
  } while (ip);
  if (v < 0) word[w++] = '-';
  while (n) word[w++] = tmp[--n];
  if (decimals) {
    word[w++] = '.';
    for (int d = decimals - 1; d >= 0; d--) {
      word[w + d] = (char)('0' + fp % 10);
      fp /= 10;
    }
    w += decimals;
  }
  word[w] = '\0';
  mp_reply_word(out, word);
}

void mp_reply_error_text(mp_reply *out, const char *text) { out->error_text = text; }

int mp_parse_decimal(const char *text, int places, int32_t *value) {
  int neg = 0, seen_digit = 0, frac_digits = -1;
  int32_t v = 0;
  if (places < 0 || places > 6) return -1;
  if (*text == '-') {
    neg = 1;
    text++;
  }
  for (; *text; text++) {
    if (*text == '.' && frac_digits < 0) {
      frac_digits = 0;
    } else if (*text >= '0' && *text <= '9') {
      if (frac_digits >= places) continue; /* finer than the unit: ignored */
      if (v > 200000000) return -1;       /* would overflow */
      v = v * 10 + (*text - '0');
      seen_digit = 1;
      if (frac_digits >= 0) frac_digits++;
    } else {
      return -1;
    }
  }
  if (!seen_digit) return -1;
  for (int d = (frac_digits < 0 ? 0 : frac_digits); d < places; d++) {
    if (v > 200000000) return -1;
    v *= 10;
  }
  *value = neg ? -v : v;
  return 0;
}

int mp_parse_fixed(const char *text, int32_t *value_milli) {
  return mp_parse_decimal(text, 3, value_milli);
}

void mp_reply_decimal(mp_reply *out, int32_t value, int places) {
  char tmp[12], word[16];
  int n = 0, w = 0;
  uint32_t u = (uint32_t)(value < 0 ? -value : value);
  if (places < 0) places = 0;
  if (places > 6) places = 6;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u || n <= places); /* at least one digit before the point */
  if (value < 0) word[w++] = '-';
  while (n) {
    if (n == places) word[w++] = '.';
    word[w++] = tmp[--n];
  }
  word[w] = '\0';
  mp_reply_word(out, word);
}

void mp_error_word(mp_reply *out, const char *text) {
  while (*text && out->text_len < MP_MAX_ERROR_TEXT - 1) out->text[out->text_len++] = *text++;
  out->text[out->text_len] = '\0';
  out->error_text = out->text;
}

void mp_error_number(mp_reply *out, int32_t value_milli, int decimals) {
  mp_reply tmp;
  tmp.len = 0;
  int places = decimals;
  if (decimals == MP_SHORTEST) {
    places = 3;
    int32_t v = value_milli;
    while (places > 1 && v % 10 == 0) {
      v /= 10;
      places--;
    }
  }
  mp_reply_fixed(&tmp, value_milli, places);
  tmp.buf[tmp.len] = '\0';
  mp_error_word(out, tmp.buf + 1); /* skip the separating space */
}

int mp_error_argument(mp_reply *out, const mp_request *req, int index, const char *name) {
  if (index >= req->argc) {
    mp_error_word(out, "missing ");
    mp_error_word(out, name);
  } else {
    mp_error_word(out, name);
    mp_error_word(out, " ");
    mp_error_word(out, req->args[index]);
    mp_error_word(out, " not a number");
  }
  return MP_ERR_BAD_ARGUMENT;
}

int mp_error_unknown_command(mp_reply *out, const mp_request *req) {
  mp_error_word(out, "unknown command ");
  mp_error_word(out, req->cmd);
  return MP_ERR_UNKNOWN_COMMAND;
}

int mp_arg_fixed(const mp_request *req, int index, const char *name, int32_t *value_milli,
                 mp_reply *out) {
  if (index >= req->argc || mp_parse_fixed(req->args[index], value_milli) != 0) {
    return mp_error_argument(out, req, index, name);
  }
  return MP_OK;
}
