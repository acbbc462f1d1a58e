/* `berth-runtime init [--] CMD [ARG...]`, also run as `docker-init` (the name `--init` mounts it
   under, /sbin/docker-init): a minimal init for pid 1 of a container, as docker's tini is. */
#ifndef BERTH_INIT_H
#define BERTH_INIT_H

/* Runs CMD as its child, forwards the signals it gets to it, reaps every process that ends up
   its child (zombies of orphans included) and exits with CMD's status (128+N after signal N).
   `argv` are the arguments after `init` (or after docker-init's own name). */
int init_main (int argc, char **argv);

#endif
