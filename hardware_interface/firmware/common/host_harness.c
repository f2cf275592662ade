/* Host-side test harness: runs the protocol library on stdin/stdout with a toy command table
 * (ID, NUM echoes fixed-point numbers, RUN counts executions), so tests can compare the C
 * framing byte for byte with the Python drivers and emulators. Not flashed to any board. */
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include "maosic_protocol.h"
static int executed = 0;
static void wr(const char *d, size_t n) { fwrite(d, 1, n, stdout); }
static int dispatch(const mp_request *r, mp_reply *o) {
  if (strcmp(r->cmd, "ID") == 0) { mp_reply_word(o, "TEST"); mp_reply_word(o, "1.0.0"); return MP_OK; }
  if (strcmp(r->cmd, "NUM") == 0) {
    for (int i = 0; i < r->argc; i++) { int32_t v; if (mp_parse_fixed(r->args[i], &v)) { mp_reply_error_text(o, "bad number"); return MP_ERR_BAD_ARGUMENT; }
      mp_reply_fixed(o, v, 1); mp_reply_fixed(o, v, 3); }
    return MP_OK; }
  if (strcmp(r->cmd, "RUN") == 0) { executed++; mp_reply_fixed(o, executed * 1000, 0); return MP_OK; }
  mp_reply_error_text(o, "unknown command");
  return MP_ERR_UNKNOWN_COMMAND;
}
int main(void) {
  mp_state s; mp_init(&s, dispatch, wr);
  char buf[256]; size_t n;
  while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) mp_feed(&s, buf, n);
  return 0;
}
