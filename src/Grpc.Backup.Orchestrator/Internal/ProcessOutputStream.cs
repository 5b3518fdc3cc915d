using System.Diagnostics;
using Grpc.Backup.Transport;

namespace Grpc.Backup.Orchestrator.Internal;

/// <summary>
/// A tool's stdout read as a stream (tar of a restore directory, guestfish's <c>tar-out</c>): end of file is the end of
/// the data only if the tool succeeded, else the read fails with its stderr. Disposing kills the tool if it still runs.
/// </summary>
internal sealed class ProcessOutputStream : Stream
{
    private readonly Process _process;
    private readonly Stream _output;
    private readonly Task<string> _errors;
    private readonly string _failure;
    private int _disposed;

    private ProcessOutputStream(Process process, string failure)
    {
        _process = process;
        _failure = failure;
        _output = process.StandardOutput.BaseStream;
        _errors = process.StandardError.ReadToEndAsync();
    }

    /// <summary>Starts <paramref name="info"/> (stdin closed at once); <paramref name="failure"/> begins the error of a failed run.</summary>
    public static Stream Start(ProcessStartInfo info, string failure)
    {
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        info.RedirectStandardInput = true;
        Process process = Process.Start(info) ?? throw new BackupException($"cannot start {info.FileName}");
        process.StandardInput.Close();
        return new ProcessOutputStream(process, failure);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        int read = await _output.ReadAsync(buffer, cancellationToken);
        if (read == 0 && buffer.Length > 0)
        {
            await _process.WaitForExitAsync(cancellationToken);
            if (_process.ExitCode != 0)
            {
                throw new IOException($"{_failure} ({Path.GetFileName(_process.StartInfo.FileName)} exit status {_process.ExitCode}): {ExternalProcess.Shorten((await _errors).Trim())}");
            }
        }
        return read;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
            _process.WaitForExit();
            ExternalProcess.DisposeWithPipes(_process);
        }
        base.Dispose(disposing);
    }
}
