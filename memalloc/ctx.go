package memalloc

import "context"

// taskKey is the context key for the Task.
type taskKey struct{}

// WithTask returns a copy of ctx that carries t, for code that already threads
// a context.Context through its calls. The context carries the task itself,
// never its PF flags: scopes stay on the task, where saves and restores pair.
//
// Kernel: none (the kernel has current).
func WithTask(ctx context.Context, t *Task) context.Context {
	return context.WithValue(ctx, taskKey{}, t)
}

// TaskFrom returns the task WithTask stored in ctx, or nil if there is none.
//
// Kernel: none (the kernel has current).
func TaskFrom(ctx context.Context) *Task {
	t, _ := ctx.Value(taskKey{}).(*Task)
	return t
}
