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
  int is_resync = (tag[0] == '0' && tag[1] == '0');
  /* The host resent the identical line: answer from the cache, do not execute twice. */
  if (!is_resync && s->last_reply_len && strcmp(line, s->last_request) == 0) {
    s->write(s->last_reply, s->last_reply_len);
    return;
  }
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
  mp_reply out = {{0}, 0, "error"};
  out.buf[out.len++] = tag[0];
  out.buf[out.len++] = tag[1];
  memcpy(out.buf + out.len, " OK", 3);
  out.len += 3;
  int code = s->dispatch(&req, &out);
  /* remember the request for duplicate suppression (restore the '*' we cut) */
  *star = '*';
  if (is_resync) {
    s->last_request[0] = '\0';
    s->last_reply_len = 0;
  } else {
    strncpy(s->last_request, s->line, MP_MAX_LINE);
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

int mp_parse_fixed(const char *text, int32_t *value_milli) {
  int neg = 0, seen_digit = 0, frac_digits = -1;
  int32_t v = 0;
  if (*text == '-') {
    neg = 1;
    text++;
  }
  for (; *text; text++) {
    if (*text == '.' && frac_digits < 0) {
      frac_digits = 0;
    } else if (*text >= '0' && *text <= '9') {
      if (frac_digits >= 3) continue; /* finer than 1/1000: ignored */
      if (v > 200000000) return -1;   /* would overflow */
      v = v * 10 + (*text - '0');
      seen_digit = 1;
      if (frac_digits >= 0) frac_digits++;
    } else {
      return -1;
    }
  }
  if (!seen_digit) return -1;
  for (int d = (frac_digits < 0 ? 0 : frac_digits); d < 3; d++) v *= 10;
  *value_milli = neg ? -v : v;
  return 0;
}
