/*
 * ftvm-poweroff: powers the guest off and hands an exit status to the host.
 *
 *   ftvm-poweroff [STATUS]        STATUS: 0..65535, default 0
 *
 * Syncs, then writes one 32-bit word to the sifive,test finisher at physical
 * 0x100000 through /dev/mem: 0x5555 ("pass") for status 0, and
 * (STATUS << 16) | 0x3333 ("fail" with a code) otherwise. QEMU's virt machine
 * and the ftvm machine both stop on that write and exit with STATUS (the host
 * process keeps its low 8 bits, as for any exit status).
 *
 * If the finisher cannot be mapped, or the write does not stop the machine,
 * it falls back to what `poweroff -f` does: reboot(RB_POWER_OFF), which goes
 * through the kernel's syscon-poweroff driver and always reports status 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <unistd.h>

enum {
  kFinisherBase = 0x100000,
  kFinisherPass = 0x5555,
  kFinisherFail = 0x3333,
  kMaxStatus = 0xffff,
};

static int usage(void) {
  fputs("usage: ftvm-poweroff [STATUS]   (STATUS 0..65535, default 0)\n", stderr);
  return 2;
}

/* Returns only if the finisher could not be used; explains why on stderr. */
static void write_finisher(uint32_t value) {
  int fd = open("/dev/mem", O_RDWR | O_SYNC);
  if (fd < 0) {
    fprintf(stderr, "ftvm-poweroff: cannot open /dev/mem: %s\n", strerror(errno));
    return;
  }
  long page = sysconf(_SC_PAGESIZE);
  void *map = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
                   kFinisherBase);
  if (map == MAP_FAILED) {
    fprintf(stderr, "ftvm-poweroff: cannot map the finisher at 0x%x: %s\n",
            kFinisherBase, strerror(errno));
    close(fd);
    return;
  }
  *(volatile uint32_t *)map = value;
  /* A working finisher never lets us get here. */
  __sync_synchronize();
  fprintf(stderr, "ftvm-poweroff: the finisher at 0x%x did not stop the machine\n",
          kFinisherBase);
  munmap(map, (size_t)page);
  close(fd);
}

int main(int argc, char **argv) {
  unsigned long status = 0;
  if (argc > 2) return usage();
  if (argc == 2) {
    char *end = NULL;
    errno = 0;
    status = strtoul(argv[1], &end, 10);
    if (errno != 0 || end == argv[1] || *end != '\0' || argv[1][0] == '-' ||
        status > kMaxStatus)
      return usage();
  }

  sync();
  write_finisher(status == 0 ? kFinisherPass
                             : ((uint32_t)status << 16) | kFinisherFail);

  fprintf(stderr, "ftvm-poweroff: falling back to poweroff -f (status %lu is lost)\n",
          status);
  reboot(RB_POWER_OFF);
  fprintf(stderr, "ftvm-poweroff: reboot(RB_POWER_OFF): %s\n", strerror(errno));
  return 1;
}
