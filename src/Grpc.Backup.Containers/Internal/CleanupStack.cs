namespace Grpc.Backup.Containers.Internal;

/// <summary>
/// Undo actions (unmount, delete a snapshot, end a namespace, remove a directory), run last-in first-out. Every action
/// runs even when an earlier one fails: a failed unmount must not leave a snapshot behind as well.
/// </summary>
internal sealed class CleanupStack
{
    private readonly Stack<(string What, Func<Task> Action)> _actions = new();

    public void Push(string what, Func<Task> action) => _actions.Push((what, action));

    /// <summary>Runs and forgets every action; returns one message per failure.</summary>
    public async Task<IReadOnlyList<string>> RunAsync()
    {
        var failures = new List<string>();
        while (_actions.TryPop(out (string What, Func<Task> Action) item))
        {
            try
            {
                await item.Action();
            }
#pragma warning disable CA1031 // Cleanup goes on whatever failed; the failure is reported, not lost.
            catch (Exception e)
#pragma warning restore CA1031
            {
                failures.Add($"cleanup: {item.What} failed: {e.Message}");
            }
        }
        return failures;
    }
}
