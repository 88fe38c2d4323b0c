/* Saves libmosquitto's wake-up socket pair. libmosquitto 2.0 opens an AF_UNIX socketpair per
 * client so its own network thread can be woken, and writes one byte into it for every packet
 * it queues; an external loop never reads it, so each client costs two extra descriptors and
 * its pair keeps up to a socket buffer (~200 KB) of kernel memory. libmosquitto 2.1 lets a
 * client turn it off (MOSQ_OPT_DISABLE_SOCKETPAIR); 2.0.11 has no such option, so this file
 * defines socketpair() in the executable, which the dynamic linker binds libmosquitto's call to
 * (symbol interposition), and refuses while refusing is enabled. libmosquitto then goes on
 * without the pair, as it does when the call fails for any other reason. */
#include "nopair.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static atomic_bool refusing;
static atomic_ulong refused;

void nopair_enable(bool on)
{
    atomic_store(&refusing, on);
}

unsigned long nopair_refused(void)
{
    return atomic_load(&refused);
}

/* The interposed libc function: its name and signature are fixed by POSIX. */
int socketpair(int domain, int type, int protocol, int sv[2])
{
    if (atomic_load(&refusing) && domain == AF_UNIX) {
        atomic_fetch_add(&refused, 1);
        errno = EMFILE;
        return -1;
    }
    return (int)syscall(SYS_socketpair, domain, type, protocol, sv);
}
