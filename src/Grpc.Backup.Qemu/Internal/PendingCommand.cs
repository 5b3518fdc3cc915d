using System.Text.Json.Nodes;

namespace Grpc.Backup.Qemu.Internal;

/// <summary>A command that was sent and is waiting for the reply carrying its id.</summary>
internal sealed class PendingCommand
{
    // Continuations run asynchronously so callers never execute on (and stall) the reader loop.
    private readonly TaskCompletionSource<JsonNode?> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public PendingCommand(string command) => Command = command;

    public string Command { get; }

    public Task<JsonNode?> Task => _completion.Task;

    public void Complete(JsonNode? result) => _completion.TrySetResult(result);

    public void Fail(Exception exception) => _completion.TrySetException(exception);
}
