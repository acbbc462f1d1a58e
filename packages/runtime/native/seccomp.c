#include "seccomp.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "files.h"
#include "json.h"

/* The first line of a cached program; a layout change gets a new number. */
#define CACHE_MAGIC "berth-seccomp-bpf 1\n"

uint32_t
seccomp_arch_token (const char *name)
{
  char lower[32];
  if (strncmp (name, "SCMP_ARCH_", 10) == 0)
    name += 10;
  size_t n = strlen (name);
  if (n >= sizeof lower)
    return 0;
  for (size_t i = 0; i <= n; i++)
    lower[i] = (char) (name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
  return seccomp_arch_resolve_name (lower);
}

static uint32_t
action_of (int action, bool has_errno, uint32_t errno_ret)
{
  switch (action)
    {
    case SECCOMP_ACTION_KILL_THREAD:
      return SCMP_ACT_KILL_THREAD;
    case SECCOMP_ACTION_KILL_PROCESS:
      return SCMP_ACT_KILL_PROCESS;
    case SECCOMP_ACTION_TRAP:
      return SCMP_ACT_TRAP;
    case SECCOMP_ACTION_ERRNO:
      return SCMP_ACT_ERRNO (has_errno ? errno_ret : EPERM);
    case SECCOMP_ACTION_TRACE:
      return SCMP_ACT_TRACE (has_errno ? errno_ret : EPERM);
    case SECCOMP_ACTION_LOG:
      return SCMP_ACT_LOG;
    default:
      return SCMP_ACT_ALLOW;
    }
}

static void
release_ctx (scmp_filter_ctx *ctx)
{
  if (*ctx)
    seccomp_release (*ctx);
}

/* The seccomp(2) flags of the profile that change how the filter is loaded, not what it is. */
static unsigned int
load_flags (const struct spec_seccomp *sc)
{
  return sc->flags & (SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW);
}

static int
compile_profile (const struct spec_seccomp *sc, struct seccomp_program *out, shim_error_t *err)
{
  uint32_t def = action_of (sc->default_action, sc->has_default_errno, sc->default_errno);
  __attribute__ ((cleanup (release_ctx))) scmp_filter_ctx ctx = seccomp_init (def);
  if (ctx == NULL)
    return shim_make_error (err, ENOMEM, "seccomp_init");
  int r;
  /* no_new_privileges is the spec's own setting, applied separately; libseccomp must not force it. */
  if ((r = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_NNP, 0)) < 0)
    return shim_make_error (err, -r, "seccomp: clear the no_new_privs attribute");
  for (size_t i = 0; i < sc->n_architectures; i++)
    {
      uint32_t arch = seccomp_arch_token (sc->architectures[i]);
      r = seccomp_arch_add (ctx, arch);
      if (r < 0 && r != -EEXIST)
        return shim_make_error (err, -r, "seccomp: add architecture %s", sc->architectures[i]);
    }
  /* Set although the program is loaded by us: libseccomp refuses them where the kernel lacks them. */
  if (sc->flags & SECCOMP_FILTER_FLAG_LOG)
    if ((r = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_LOG, 1)) < 0)
      return shim_make_error (err, -r, "seccomp: flag SECCOMP_FILTER_FLAG_LOG");
  if (sc->flags & SECCOMP_FILTER_FLAG_SPEC_ALLOW)
    if ((r = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_SSB, 1)) < 0)
      return shim_make_error (err, -r, "seccomp: flag SECCOMP_FILTER_FLAG_SPEC_ALLOW");
  if (sc->flags & (1U << 5))
    shim_warning ("seccomp: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV needs a newer libseccomp, ignored");

  for (size_t i = 0; i < sc->n_rules; i++)
    {
      const struct spec_seccomp_rule *rule = &sc->rules[i];
      uint32_t action = action_of (rule->action, rule->has_errno, rule->errno_ret);
      if (action == def)
        continue; /* libseccomp refuses a rule that repeats the default action */
      struct scmp_arg_cmp cmp[6];
      bool repeated = false;
      for (size_t j = 0; j < rule->n_args; j++)
        {
          cmp[j].arg = rule->args[j].index;
          cmp[j].op = (enum scmp_compare) rule->args[j].op;
          cmp[j].datum_a = rule->args[j].value;
          cmp[j].datum_b = rule->args[j].value_two;
          for (size_t k = 0; k < j; k++)
            if (rule->args[k].index == rule->args[j].index)
              repeated = true;
        }
      for (size_t n = 0; n < rule->n_names; n++)
        {
          int nr = seccomp_syscall_resolve_name (rule->names[n]);
          if (nr == __NR_SCMP_ERROR)
            continue;
          /* Conditions on one argument cannot be ANDed by libseccomp; like runc, each becomes its own rule (OR). */
          if (repeated)
            {
              for (size_t j = 0; j < rule->n_args; j++)
                if ((r = seccomp_rule_add_array (ctx, action, nr, 1, &cmp[j])) < 0)
                  return shim_make_error (err, -r, "seccomp: linux.seccomp.syscalls[%zu]: add rule for `%s`", i,
                                          rule->names[n]);
            }
          else if ((r = seccomp_rule_add_array (ctx, action, nr, (unsigned) rule->n_args, cmp)) < 0)
            return shim_make_error (err, -r, "seccomp: linux.seccomp.syscalls[%zu]: add rule for `%s`", i,
                                    rule->names[n]);
        }
    }
  cleanup_close int fd = memfd_create ("berth-seccomp", MFD_CLOEXEC);
  if (fd < 0)
    return shim_make_error (err, errno, "seccomp: memfd_create");
  if ((r = seccomp_export_bpf (ctx, fd)) < 0)
    return shim_make_error (err, -r, "seccomp: generate the filter");
  if (lseek (fd, 0, SEEK_SET) < 0)
    return shim_make_error (err, errno, "seccomp: rewind the filter");
  char *bpf = NULL;
  size_t len = 0;
  if (read_fd (fd, "the seccomp filter", &bpf, &len, err) < 0)
    return -1;
  if (len == 0 || len % sizeof (struct sock_filter) || len / sizeof (struct sock_filter) > BPF_MAXINSNS)
    {
      free (bpf);
      return shim_make_error (err, EINVAL, "seccomp: the filter has %zu bytes, not a BPF program", len);
    }
  out->filter = (struct sock_filter *) bpf;
  out->len = (unsigned short) (len / sizeof (struct sock_filter));
  out->flags = load_flags (sc);
  return 0;
}

/* What a cached program must match: the profile as written, and what shaped its compilation. */
static void
cache_key (const struct spec *s, struct strbuf *key)
{
  const struct scmp_version *v = seccomp_version ();
  strbuf_addf (key, "libseccomp %u.%u.%u api %u\n", v->major, v->minor, v->micro, seccomp_api_get ());
  json_write_value (key, json_get (json_get (s->doc, "linux"), "seccomp"));
}

static uint64_t
fnv1a (const char *p, size_t n)
{
  uint64_t h = 14695981039346656037ULL;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char) p[i]) * 1099511628211ULL;
  return h;
}

/* The program cached for `key`, if the file holds exactly that key (the name is only a hash). */
static bool
cache_read (const char *path, const struct strbuf *key, struct seccomp_program *out)
{
  cleanup_free char *text = NULL;
  size_t len = 0;
  shim_error_t e = NULL;
  if (read_file (path, &text, &len, &e) < 0)
    {
      shim_error_release (&e);
      return false;
    }
  size_t magic = strlen (CACHE_MAGIC);
  uint32_t key_len, flags, n;
  size_t head = magic + sizeof key_len;
  if (len < head || memcmp (text, CACHE_MAGIC, magic) != 0)
    return false;
  memcpy (&key_len, text + magic, sizeof key_len);
  if (key_len != key->len || len < head + key_len + sizeof flags + sizeof n
      || memcmp (text + head, key->p, key_len) != 0)
    return false;
  memcpy (&flags, text + head + key_len, sizeof flags);
  memcpy (&n, text + head + key_len + sizeof flags, sizeof n);
  size_t at = head + key_len + sizeof flags + sizeof n;
  if (n == 0 || n > BPF_MAXINSNS || len != at + n * sizeof (struct sock_filter))
    return false;
  out->filter = xmalloc (n * sizeof (struct sock_filter));
  memcpy (out->filter, text + at, n * sizeof (struct sock_filter));
  out->len = (unsigned short) n;
  out->flags = flags;
  return true;
}

static void
cache_write (const char *dir, const char *path, const struct strbuf *key, const struct seccomp_program *p)
{
  shim_error_t e = NULL;
  struct strbuf b = { 0 };
  uint32_t key_len = (uint32_t) key->len, flags = p->flags, n = p->len;
  strbuf_add (&b, CACHE_MAGIC);
  strbuf_addn (&b, (const char *) &key_len, sizeof key_len);
  strbuf_addn (&b, key->p, key->len);
  strbuf_addn (&b, (const char *) &flags, sizeof flags);
  strbuf_addn (&b, (const char *) &n, sizeof n);
  strbuf_addn (&b, (const char *) p->filter, n * sizeof (struct sock_filter));
  /* A cache that cannot be written only costs the next container its compile time. */
  if (mkdir_p (dir, 0700, &e) < 0 || write_file_atomic (path, b.p, b.len, 0600, &e) < 0)
    shim_error_release (&e);
  free (b.p);
}

int
seccomp_program_prepare (const struct spec *s, const char *cache_dir, struct seccomp_program *out, shim_error_t *err)
{
  memset (out, 0, sizeof *out);
  if (s->seccomp == NULL)
    return 0;
  if (cache_dir == NULL)
    return compile_profile (s->seccomp, out, err);
  struct strbuf key = { 0 };
  cache_key (s, &key);
  cleanup_free char *path = xasprintf ("%s/%016llx.bpf", cache_dir, (unsigned long long) fnv1a (key.p, key.len));
  int r = 0;
  if (!cache_read (path, &key, out))
    {
      r = compile_profile (s->seccomp, out, err);
      if (r == 0)
        cache_write (cache_dir, path, &key, out);
    }
  free (key.p);
  return r;
}

int
seccomp_program_load (const struct seccomp_program *p, shim_error_t *err)
{
  if (p == NULL || p->filter == NULL)
    return 0;
  struct sock_fprog prog = { .len = p->len, .filter = p->filter };
  if (syscall (SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->flags, &prog) == 0)
    return 0;
  if (errno == ENOSYS && p->flags == 0 && prctl (PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0)
    return 0;
  return shim_make_error (err, errno, "seccomp: load the filter");
}

void
seccomp_program_release (struct seccomp_program *p)
{
  free (p->filter);
  p->filter = NULL;
  p->len = 0;
}
