/*
 * berth-fsops: the file system calls Node has no binding for, served over stdin/stdout to
 * @berth/snapshot. Each request is a frame: u32 length, u8 op, then fields (u32-prefixed byte
 * strings and little-endian integers). Each reply is: i32 status (0 or -errno), u32 length, data.
 * Requests are answered in order, so the client can pipeline them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

enum { OP_MKNOD = 1, OP_SETXATTR = 2, OP_LISTXATTRS = 3, OP_GETXATTR = 4 };

struct reader {
  const unsigned char *p;
  size_t left;
  int bad;
};

static uint32_t get_u32(struct reader *r) {
  if (r->left < 4) {
    r->bad = 1;
    return 0;
  }
  uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
  r->p += 4;
  r->left -= 4;
  return v;
}

static int64_t get_i64(struct reader *r) {
  uint64_t lo = get_u32(r);
  uint64_t hi = get_u32(r);
  return (int64_t)(lo | hi << 32);
}

/* A NUL-terminated copy of the next byte string; the caller frees it. */
static char *get_str(struct reader *r, size_t *len_out) {
  uint32_t len = get_u32(r);
  if (r->bad || r->left < len) {
    r->bad = 1;
    return NULL;
  }
  char *s = malloc((size_t)len + 1);
  if (!s) {
    r->bad = 1;
    return NULL;
  }
  memcpy(s, r->p, len);
  s[len] = 0;
  r->p += len;
  r->left -= len;
  if (len_out) *len_out = len;
  return s;
}

struct buffer {
  unsigned char *data;
  size_t len, cap;
};

static int put_bytes(struct buffer *b, const void *data, size_t len) {
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->len + len) cap *= 2;
    unsigned char *n = realloc(b->data, cap);
    if (!n) return -ENOMEM;
    b->data = n;
    b->cap = cap;
  }
  memcpy(b->data + b->len, data, len);
  b->len += len;
  return 0;
}

static int put_u32(struct buffer *b, uint32_t v) {
  unsigned char le[4] = {v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff, (v >> 24) & 0xff};
  return put_bytes(b, le, 4);
}

static int put_str(struct buffer *b, const void *data, size_t len) {
  int rc = put_u32(b, (uint32_t)len);
  return rc < 0 ? rc : put_bytes(b, data, len);
}

static int do_mknod(struct reader *r) {
  char *path = get_str(r, NULL);
  uint32_t mode = get_u32(r), major = get_u32(r), minor = get_u32(r), uid = get_u32(r), gid = get_u32(r);
  int64_t sec = get_i64(r);
  uint32_t nsec = get_u32(r);
  int rc = 0;
  if (r->bad) {
    rc = -EINVAL;
  } else if (mknod(path, mode, makedev(major, minor)) < 0) {
    rc = -errno;
  } else if (lchown(path, uid, gid) < 0) {
    rc = -errno;
  } else if (chmod(path, mode & 07777) < 0) {
    rc = -errno;
  } else {
    struct timespec times[2] = {{sec, nsec}, {sec, nsec}};
    if (utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW) < 0) rc = -errno;
  }
  free(path);
  return rc;
}

static int do_setxattr(struct reader *r) {
  char *path = get_str(r, NULL);
  char *name = get_str(r, NULL);
  size_t len = 0;
  char *value = get_str(r, &len);
  int rc = 0;
  if (r->bad)
    rc = -EINVAL;
  else if (lsetxattr(path, name, value, len, 0) < 0)
    rc = -errno;
  free(path);
  free(name);
  free(value);
  return rc;
}

/* Reads one attribute, growing the buffer when the value changed size meanwhile. */
static ssize_t read_xattr(const char *path, const char *name, char **value) {
  ssize_t size = lgetxattr(path, name, NULL, 0);
  for (int tries = 0; size >= 0 && tries < 4; tries++) {
    char *buf = realloc(*value, size ? (size_t)size : 1);
    if (!buf) return -ENOMEM;
    *value = buf;
    ssize_t got = lgetxattr(path, name, buf, (size_t)size);
    if (got >= 0) return got;
    if (errno != ERANGE) return -errno;
    size = lgetxattr(path, name, NULL, 0);
  }
  return size < 0 ? -errno : -ERANGE;
}

static int do_listxattrs(struct reader *r, struct buffer *out) {
  char *path = get_str(r, NULL);
  if (r->bad) {
    free(path);
    return -EINVAL;
  }
  int rc = 0;
  char *names = NULL, *value = NULL;
  ssize_t size = llistxattr(path, NULL, 0);
  if (size < 0) {
    rc = (errno == ENOTSUP) ? 0 : -errno;
    size = 0;
  }
  if (rc == 0 && size > 0) {
    names = malloc((size_t)size);
    if (!names) rc = -ENOMEM;
    else if ((size = llistxattr(path, names, (size_t)size)) < 0) rc = -errno;
  }
  uint32_t count = 0;
  struct buffer body = {0};
  for (ssize_t at = 0; rc == 0 && at < size; at += (ssize_t)strlen(names + at) + 1) {
    ssize_t got = read_xattr(path, names + at, &value);
    if (got == -ENODATA) continue; /* removed meanwhile */
    if (got < 0) {
      rc = (int)got;
      break;
    }
    if ((rc = put_str(&body, names + at, strlen(names + at))) < 0) break;
    if ((rc = put_str(&body, value, (size_t)got)) < 0) break;
    count++;
  }
  if (rc == 0) rc = put_u32(out, count);
  if (rc == 0) rc = put_bytes(out, body.data, body.len);
  free(body.data);
  free(names);
  free(value);
  free(path);
  return rc;
}

static int do_getxattr(struct reader *r, struct buffer *out) {
  char *path = get_str(r, NULL);
  char *name = get_str(r, NULL);
  char *value = NULL;
  int rc = 0;
  if (r->bad) {
    rc = -EINVAL;
  } else {
    ssize_t got = read_xattr(path, name, &value);
    rc = got < 0 ? (int)got : put_bytes(out, value, (size_t)got);
  }
  free(path);
  free(name);
  free(value);
  return rc;
}

static unsigned char in_buf[1 << 16];
static size_t in_pos, in_len;

/* Reads exactly len bytes of requests; replies go out just before blocking for more input, so
 * the replies to a pipelined batch leave together. */
static int read_full(void *buf, size_t len) {
  unsigned char *dst = buf;
  while (len > 0) {
    if (in_pos == in_len) {
      if (fflush(stdout) != 0) return -1;
      ssize_t got;
      do got = read(STDIN_FILENO, in_buf, sizeof in_buf);
      while (got < 0 && errno == EINTR);
      if (got <= 0) return -1;
      in_pos = 0;
      in_len = (size_t)got;
    }
    size_t n = in_len - in_pos < len ? in_len - in_pos : len;
    memcpy(dst, in_buf + in_pos, n);
    in_pos += n;
    dst += n;
    len -= n;
  }
  return 0;
}

int main(void) {
  /* Modes come from the layer; nothing may mask them. */
  umask(0);
  static unsigned char reply_head[8];
  unsigned char *frame = NULL;
  size_t frame_cap = 0;
  for (;;) {
    unsigned char len_le[4];
    if (read_full(len_le, 4) < 0) break;
    uint32_t len = (uint32_t)len_le[0] | (uint32_t)len_le[1] << 8 | (uint32_t)len_le[2] << 16 | (uint32_t)len_le[3] << 24;
    if (len == 0 || len > (64u << 20)) return 2;
    if (len > frame_cap) {
      unsigned char *n = realloc(frame, len);
      if (!n) return 3;
      frame = n;
      frame_cap = len;
    }
    if (read_full(frame, len) < 0) return 2;
    struct reader r = {frame + 1, len - 1, 0};
    struct buffer out = {0};
    int rc;
    switch (frame[0]) {
    case OP_MKNOD:
      rc = do_mknod(&r);
      break;
    case OP_SETXATTR:
      rc = do_setxattr(&r);
      break;
    case OP_LISTXATTRS:
      rc = do_listxattrs(&r, &out);
      break;
    case OP_GETXATTR:
      rc = do_getxattr(&r, &out);
      break;
    default:
      rc = -ENOSYS;
    }
    if (rc < 0) out.len = 0;
    uint32_t status = (uint32_t)rc, olen = (uint32_t)out.len;
    for (int i = 0; i < 4; i++) {
      reply_head[i] = (status >> (8 * i)) & 0xff;
      reply_head[4 + i] = (olen >> (8 * i)) & 0xff;
    }
    if (fwrite(reply_head, 1, 8, stdout) != 8 || (out.len && fwrite(out.data, 1, out.len, stdout) != out.len)) return 4;
    free(out.data);
  }
  fflush(stdout);
  free(frame);
  return 0;
}
