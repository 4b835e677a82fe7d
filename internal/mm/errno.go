package mm

import (
	"strconv"

	"github.com/mmsim/mmsim/zone"
)

// Errno is a Linux error number, as a system call returns it negated. The
// values are the kernel's (x86-64, asm-generic), whatever the host's
// syscall.Errno says, so that a simulated run prints the same on every
// host. The texts are glibc's strerror() ones, as a user program prints
// them (the kernel's header comments differ: "Try again" for EAGAIN).
//
// Kernel: include/uapi/asm-generic/errno-base.h, errno.h.
type Errno int

// The errors the mapping calls return.
const (
	EPERM      Errno = 1
	ENOENT     Errno = 2
	EINTR      Errno = 4
	EBADF      Errno = 9
	EAGAIN     Errno = 11
	ENOMEM     Errno = 12
	EFAULT     Errno = 14
	EBUSY      Errno = 16
	EEXIST     Errno = 17
	EINVAL     Errno = 22
	ENFILE     Errno = 23
	ERANGE     Errno = 34
	ENOSYS     Errno = 38
	EOPNOTSUPP Errno = 95
)

var errnoNames = map[Errno][2]string{
	EPERM:      {"EPERM", "Operation not permitted"},
	ENOENT:     {"ENOENT", "No such file or directory"},
	EINTR:      {"EINTR", "Interrupted system call"},
	EBADF:      {"EBADF", "Bad file descriptor"},
	EAGAIN:     {"EAGAIN", "Resource temporarily unavailable"},
	ENOMEM:     {"ENOMEM", "Cannot allocate memory"},
	EFAULT:     {"EFAULT", "Bad address"},
	EBUSY:      {"EBUSY", "Device or resource busy"},
	EEXIST:     {"EEXIST", "File exists"},
	EINVAL:     {"EINVAL", "Invalid argument"},
	ENFILE:     {"ENFILE", "Too many open files in system"},
	ERANGE:     {"ERANGE", "Numerical result out of range"},
	ENOSYS:     {"ENOSYS", "Function not implemented"},
	EOPNOTSUPP: {"EOPNOTSUPP", "Operation not supported"},
}

// Name returns the errno's symbolic name ("EINVAL").
func (e Errno) Name() string {
	if n, ok := errnoNames[e]; ok {
		return n[0]
	}
	return "E?"
}

// Error returns the name and strerror's text: "EINVAL (Invalid argument)".
func (e Errno) Error() string {
	if n, ok := errnoNames[e]; ok {
		return n[0] + " (" + n[1] + ")"
	}
	return "errno " + strconv.Itoa(int(e))
}

// Is lets errors.Is(err, zone.ErrInvalid) hold for EINVAL: the kernel
// refused the request as invalid.
func (e Errno) Is(target error) bool { return e == EINVAL && target == zone.ErrInvalid }
