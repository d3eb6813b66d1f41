/*
 * Test-only N-API addon for test/fork.test.ts: lets a Node script fork() itself (Node has no
 * API for it), wait for the forked child and leave a forked child with _exit().
 *
 *   fork()                     -> pid in the parent, 0 in the child (throws on failure).
 *                                 Node 20's V8 does not hand its heap to a forked child: the
 *                                 child dies (SIGSEGV) as soon as it runs JavaScript again.
 *   forkAndExit(code)          -> forks; the child runs only the fork handlers (pthread_atfork)
 *                                 and _exit(code)s, as a child does between fork and exec.
 *                                 Returns the child's pid.
 *   forkMarked(path)           -> fork(); the child first creates `path` from C (proof that it
 *                                 ran), then returns to JavaScript like fork()
 *   waitChild(pid, timeoutMs)  -> { exited, code, signal, timedOut } (kills the child with
 *                                 SIGKILL when it has not ended in time)
 *   exitNow(code)              -> _exit(code): no atexit handlers, no libuv/V8 teardown, which
 *                                 a forked child (whose other threads are gone) could hang in
 *
 * Built by the test with the C compiler against Node's own headers.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(env, call)                                        \
  do {                                                          \
    if ((call) != napi_ok) {                                    \
      napi_throw_error((env), NULL, "fork_helper: " #call);     \
      return NULL;                                              \
    }                                                           \
  } while (0)

static napi_value Fork(napi_env env, napi_callback_info info) {
  (void)info;
  pid_t pid = fork();
  if (pid < 0) {
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  napi_value result;
  CHECK(env, napi_create_int32(env, (int32_t)pid, &result));
  return result;
}

static napi_value ForkAndExit(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t code = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc >= 1) CHECK(env, napi_get_value_int32(env, argv[0], &code));
  pid_t pid = fork();
  if (pid == 0) _exit(code);
  if (pid < 0) {
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  napi_value result;
  CHECK(env, napi_create_int32(env, (int32_t)pid, &result));
  return result;
}

static napi_value ExitNow(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t code = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc >= 1) CHECK(env, napi_get_value_int32(env, argv[0], &code));
  _exit(code);
}

static void SetInt(napi_env env, napi_value object, const char* name, int32_t value) {
  napi_value v;
  napi_create_int32(env, value, &v);
  napi_set_named_property(env, object, name, v);
}

static void SetBool(napi_env env, napi_value object, const char* name, int value) {
  napi_value v;
  napi_get_boolean(env, value != 0, &v);
  napi_set_named_property(env, object, name, v);
}

static napi_value WaitChild(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t pid = 0, timeoutMs = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "waitChild(pid, timeoutMs)");
    return NULL;
  }
  CHECK(env, napi_get_value_int32(env, argv[0], &pid));
  CHECK(env, napi_get_value_int32(env, argv[1], &timeoutMs));
  int status = 0;
  int timedOut = 0;
  struct timespec tick = {0, 5 * 1000 * 1000};
  for (long waited = 0;; waited += 5) {
    pid_t done = waitpid((pid_t)pid, &status, WNOHANG);
    if (done == (pid_t)pid) break;
    if (done < 0 && errno != EINTR) {
      napi_throw_error(env, NULL, strerror(errno));
      return NULL;
    }
    if (waited >= timeoutMs && !timedOut) {
      timedOut = 1;
      kill((pid_t)pid, SIGKILL);
    }
    nanosleep(&tick, NULL);
  }
  napi_value result;
  CHECK(env, napi_create_object(env, &result));
  SetBool(env, result, "timedOut", timedOut);
  SetBool(env, result, "exited", WIFEXITED(status));
  SetInt(env, result, "code", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  SetInt(env, result, "signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return result;
}

/* fork() + (in the child) create a marker file from C, then return to JavaScript. */
static napi_value ForkMarked(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  char path[4096];
  size_t length = 0;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "forkMarked(path)");
    return NULL;
  }
  CHECK(env, napi_get_value_string_utf8(env, argv[0], path, sizeof path, &length));
  pid_t pid = fork();
  if (pid < 0) {
    napi_throw_error(env, NULL, strerror(errno));
    return NULL;
  }
  if (pid == 0) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) close(fd);
  }
  napi_value result;
  CHECK(env, napi_create_int32(env, (int32_t)pid, &result));
  return result;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"fork", NULL, Fork, NULL, NULL, NULL, napi_default, NULL},
      {"forkAndExit", NULL, ForkAndExit, NULL, NULL, NULL, napi_default, NULL},
      {"forkMarked", NULL, ForkMarked, NULL, NULL, NULL, napi_default, NULL},
      {"exitNow", NULL, ExitNow, NULL, NULL, NULL, napi_default, NULL},
      {"waitChild", NULL, WaitChild, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
