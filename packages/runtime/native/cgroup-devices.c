/* The cgroup v2 device controller: v2 has no devices.allow file; access is decided by an eBPF
   program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to the cgroup. */
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>

#include "cgroup.h"

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

struct program
{
  struct bpf_insn *insns;
  size_t n, cap;
};

static void
emit (struct program *p, struct bpf_insn insn)
{
  if (p->n == p->cap)
    {
      p->cap = p->cap ? p->cap * 2 : 64;
      p->insns = xrealloc (p->insns, p->cap * sizeof *p->insns);
    }
  p->insns[p->n++] = insn;
}

static int
access_bits (const char *access)
{
  int bits = 0;
  for (const char *a = access; *a; a++)
    bits |= *a == 'r' ? BPF_DEVCG_ACC_READ : *a == 'w' ? BPF_DEVCG_ACC_WRITE : BPF_DEVCG_ACC_MKNOD;
  return bits;
}

/* One rule: a run of "skip to the next rule unless it matches" tests, then the verdict.
   Returns false when the rule matches everything, so that nothing after it is reachable. */
static bool
emit_rule (struct program *p, const struct spec_device_rule *r)
{
  int bits = access_bits (r->access);
  bool all_access = bits == (BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD);
  int tests = (r->type != 'a') + (all_access ? 0 : 1) + (r->type != 'a' && r->major >= 0) + (r->type != 'a' && r->minor >= 0);
  /* Length of the block after each test, so each jump lands on the next rule. */
  int remaining = tests + (all_access ? 0 : 2) + 2;
  if (r->type != 'a')
    {
      remaining--;
      emit (p, INSN (BPF_JMP32 | BPF_JNE | BPF_K, BPF_REG_2, 0, (short) remaining,
                     r->type == 'b' ? BPF_DEVCG_DEV_BLOCK : BPF_DEVCG_DEV_CHAR));
    }
  if (!all_access)
    {
      emit (p, INSN (BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0));
      emit (p, INSN (BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, ~bits));
      remaining -= 3;
      emit (p, INSN (BPF_JMP32 | BPF_JNE | BPF_K, BPF_REG_1, 0, (short) remaining, 0));
    }
  if (r->type != 'a' && r->major >= 0)
    {
      remaining--;
      emit (p, INSN (BPF_JMP32 | BPF_JNE | BPF_K, BPF_REG_4, 0, (short) remaining, (int) r->major));
    }
  if (r->type != 'a' && r->minor >= 0)
    {
      remaining--;
      emit (p, INSN (BPF_JMP32 | BPF_JNE | BPF_K, BPF_REG_5, 0, (short) remaining, (int) r->minor));
    }
  emit (p, INSN (BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, r->allow ? 1 : 0));
  emit (p, INSN (BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
  return tests > 0;
}

int
cgroup_v2_device_filter (const char *path, const struct spec_device_rule *rules, size_t n, shim_error_t *err)
{
  struct program p = { 0 };
  /* r2 = device type, r3 = requested access, r4 = major, r5 = minor (struct bpf_cgroup_dev_ctx). */
  emit (&p, INSN (BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0));
  emit (&p, INSN (BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xFFFF));
  emit (&p, INSN (BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, 0, 0));
  emit (&p, INSN (BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16));
  emit (&p, INSN (BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_1, 4, 0));
  emit (&p, INSN (BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, 8, 0));
  /* The last matching rule wins, so test from the end; the verifier refuses unreachable code
     after a rule that matches every device. */
  bool reachable = true;
  for (size_t i = n; i > 0 && reachable; i--)
    reachable = emit_rule (&p, &rules[i - 1]);
  if (reachable)
    {
      emit (&p, INSN (BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1));
      emit (&p, INSN (BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
    }

  char log[4096] = { 0 };
  union bpf_attr load;
  memset (&load, 0, sizeof load);
  load.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  load.insns = (uint64_t) (uintptr_t) p.insns;
  load.insn_cnt = (uint32_t) p.n;
  load.license = (uint64_t) (uintptr_t) "Apache";
  load.log_buf = (uint64_t) (uintptr_t) log;
  load.log_size = sizeof log;
  load.log_level = 1;
  cleanup_close int prog = (int) syscall (SYS_bpf, BPF_PROG_LOAD, &load, sizeof load);
  free (p.insns);
  if (prog < 0)
    return shim_make_error (err, errno, "load the device filter program (%s)", log[0] ? log : "no verifier log");
  cleanup_close int dir = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0)
    return shim_make_error (err, errno, "open cgroup `%s`", path);
  union bpf_attr attach;
  memset (&attach, 0, sizeof attach);
  attach.target_fd = (uint32_t) dir;
  attach.attach_bpf_fd = (uint32_t) prog;
  attach.attach_type = BPF_CGROUP_DEVICE;
  attach.attach_flags = BPF_F_ALLOW_MULTI;
  if (syscall (SYS_bpf, BPF_PROG_ATTACH, &attach, sizeof attach) < 0)
    return shim_make_error (err, errno, "attach the device filter to `%s`", path);
  return 0;
}
