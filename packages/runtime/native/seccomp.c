#include "seccomp.h"

#include <errno.h>
#include <seccomp.h>
#include <string.h>

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

int
seccomp_load_profile (const struct spec_seccomp *sc, shim_error_t *err)
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
  if (sc->flags & (1U << 1))
    if ((r = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_LOG, 1)) < 0)
      return shim_make_error (err, -r, "seccomp: flag SECCOMP_FILTER_FLAG_LOG");
  if (sc->flags & (1U << 2))
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
  if ((r = seccomp_load (ctx)) < 0)
    return shim_make_error (err, -r, "seccomp: load the filter");
  return 0;
}
