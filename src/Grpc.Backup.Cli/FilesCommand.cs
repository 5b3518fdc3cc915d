using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Grpc.Backup.Containers;
using Grpc.Backup.Host;
using Grpc.Backup.Orchestrator;
using Grpc.Backup.Protocol;
using Microsoft.Extensions.Logging;

namespace Grpc.Backup.Cli;

/// <summary>
/// <c>grpc-backup files ls|get</c>: single files from a container archive, read from the provider's ordinary restore
/// stream without restoring the whole archive (direct mode, like a container restore). Names in the archive are the
/// provider's data: they are printed made safe for a terminal.
/// </summary>
internal static class FilesCommand
{
    public static Command Create() => new("files", "List or extract single files of a container backup, without restoring all of it")
    {
        List(),
        Get(),
    };

    private static Command List()
    {
        var endpoint = CommonOptions.Endpoint();
        var json = CommonOptions.Json();
        var archive = new Argument<string>("ARCHIVE") { Description = "The archive name, as listed by the provider" };
        var path = new Argument<string>("PATH") { Description = "A directory (or file) in the archive; the root by default", DefaultValueFactory = _ => "/" };
        var command = new Command("ls", "List a directory of a container archive: type and mode, owner, size, mtime, name, link target")
        {
            archive, path, endpoint, json,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            using ILoggerFactory loggers = CliLogging.Create(verbose: false);
            await using var connection = await ProviderConnection.ConnectAsync(ProviderEndpoint.Parse(result.GetValue(endpoint)!),
                loggerFactory: loggers, cancellationToken: cancellationToken);
            IReadOnlyList<ArchiveEntry> entries = await new ContainerRestoreRunner(connection, loggers.CreateLogger<ContainerRestoreRunner>())
                .ListFilesAsync(result.GetValue(archive)!, result.GetValue(path)!, cancellationToken);
            if (result.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(entries.Select(e => new
                {
                    path = e.Path,
                    type = e.Kind.ToString().ToLowerInvariant(),
                    size = e.Size,
                    mode = Convert.ToString((int)e.Mode, 8),
                    uid = e.Uid,
                    gid = e.Gid,
                    user = e.UserName,
                    group = e.GroupName,
                    mtime = e.ModificationTime.ToUnixTimeSeconds(),
                    link = e.LinkTarget,
                })));
                return ExitCodes.Success;
            }
            foreach (ArchiveEntry entry in entries)
            {
                Console.WriteLine(Line(entry));
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Get()
    {
        var endpoint = CommonOptions.Endpoint();
        var json = CommonOptions.Json();
        var archive = new Argument<string>("ARCHIVE") { Description = "The archive name, as listed by the provider" };
        var paths = new Argument<string[]>("PATH") { Description = "Files or directories in the archive (a directory brings its whole tree)", Arity = ArgumentArity.OneOrMore };
        var to = new Option<string>("--to") { Description = "Extract into this new directory (it must not exist; its parent must be root's, mode 0700), in the container's user namespace" };
        var tar = new Option<string>("--tar") { Description = "'-': write a tar of the selection to stdout instead" };
        var idmap = new Option<string[]>("--idmap")
        {
            Description = "With --to: the container's id map lines (default 'u 0 100000 65536' 'g 0 100000 65536')",
            AllowMultipleArgumentsPerToken = true,
        };
        var keepSetId = new Option<bool>("--keep-setid") { Description = "Keep setuid/setgid bits (cleared by default)" };
        var command = new Command("get", "Extract files and trees of a container archive, checked as a restore checks them")
        {
            archive, paths, to, tar, idmap, keepSetId, endpoint, json,
        };
        command.SetAction(async (result, cancellationToken) =>
        {
            string? directory = result.GetValue(to);
            string? tarOutput = result.GetValue(tar);
            if ((directory is null) == (tarOutput is null) || (tarOutput is not null && tarOutput != "-"))
            {
                await Console.Error.WriteLineAsync("grpc-backup: give either --to DIR or --tar - (see 'grpc-backup files get --help')");
                return ExitCodes.Usage;
            }
            var validation = new TarValidationOptions { SetIdBits = result.GetValue(keepSetId) ? SetIdBitsPolicy.Keep : SetIdBitsPolicy.Strip };
            using ILoggerFactory loggers = CliLogging.Create(verbose: false);
            await using var connection = await ProviderConnection.ConnectAsync(ProviderEndpoint.Parse(result.GetValue(endpoint)!),
                loggerFactory: loggers, cancellationToken: cancellationToken);
            var runner = new ContainerRestoreRunner(connection, loggers.CreateLogger<ContainerRestoreRunner>());
            if (tarOutput is not null)
            {
                await using Stream stdout = Console.OpenStandardOutput();
                TarValidationReport report = await runner.WriteFilesTarAsync(result.GetValue(archive)!, result.GetValue(paths)!, stdout, validation, cancellationToken);
                await WarnAsync(report.Warnings);
                return ExitCodes.Success;
            }
            string[] lines = result.GetValue(idmap) ?? [];
            ContainerRestoreResult extracted = await runner.ExtractFilesAsync(result.GetValue(archive)!, new ContainerRestoreOptions
            {
                IdMap = lines.Length == 0 ? IdMap.CreateDefault() : IdMap.Parse(lines),
                TargetDirectory = directory!,
                Paths = result.GetValue(paths)!,
                Validation = validation,
            }, cancellationToken);
            await WarnAsync(extracted.Warnings);
            Console.WriteLine(result.GetValue(json)
                ? JsonSerializer.Serialize(new { directory, warnings = extracted.Warnings })
                : $"extracted into {directory} ({extracted.Warnings.Count} warnings)");
            return ExitCodes.Success;
        });
        return command;
    }

    private static async Task WarnAsync(IReadOnlyList<string> warnings)
    {
        foreach (string warning in warnings)
        {
            await Console.Error.WriteLineAsync("grpc-backup: warning: " + ProviderText.Sanitize(warning));
        }
    }

    /// <summary>One entry as <c>tar -tv</c> shows it: mode, owner, size, mtime (UTC), name, link target.</summary>
    private static string Line(ArchiveEntry entry)
    {
        string owner = entry.UserName is not null && entry.GroupName is not null
            ? $"{entry.UserName}/{entry.GroupName}"
            : $"{entry.Uid}/{entry.Gid}";
        string name = entry.Path.Length == 0 ? "." : entry.Path;
        string link = entry.Kind switch
        {
            ArchiveEntryKind.Symlink => " -> " + entry.LinkTarget,
            ArchiveEntryKind.HardLink => " link to " + entry.LinkTarget,
            _ => "",
        };
        return ProviderText.Sanitize(string.Create(CultureInfo.InvariantCulture,
            $"{ModeString(entry)} {owner} {entry.Size,12} {entry.ModificationTime.UtcDateTime:yyyy-MM-dd HH:mm:ss} {name}{(entry.Kind == ArchiveEntryKind.Directory ? "/" : "")}{link}"));
    }

    private static string ModeString(ArchiveEntry entry)
    {
        var text = new StringBuilder(10);
        text.Append(entry.Kind switch
        {
            ArchiveEntryKind.Directory => 'd',
            ArchiveEntryKind.Symlink => 'l',
            ArchiveEntryKind.HardLink => 'h',
            ArchiveEntryKind.Fifo => 'p',
            ArchiveEntryKind.CharacterDevice => 'c',
            ArchiveEntryKind.BlockDevice => 'b',
            _ => '-',
        });
        int mode = (int)entry.Mode;
        for (int shift = 6; shift >= 0; shift -= 3)
        {
            int bits = (mode >> shift) & 7;
            bool special = (mode & (0b1_000_000_000 << (shift / 3))) != 0;
            char execute = (bits & 1) != 0 ? 'x' : '-';
            if (special)
            {
                execute = shift == 0 ? ((bits & 1) != 0 ? 't' : 'T') : ((bits & 1) != 0 ? 's' : 'S');
            }
            text.Append((bits & 4) != 0 ? 'r' : '-').Append((bits & 2) != 0 ? 'w' : '-').Append(execute);
        }
        return text.ToString();
    }
}
