using Google.Protobuf.Reflection;

namespace Grpc.Backup.Tests.Contract;

/// <summary>
/// The wire-compatibility rules of <c>buf breaking</c> (its WIRE_JSON category) that matter to a versioned contract,
/// applied to two descriptor sets: nothing released may disappear or change meaning. Additions are always allowed.
/// buf is not packaged for Debian, so the comparison is done here on the descriptors protoc and Google.Protobuf give.
/// </summary>
internal static class DescriptorComparer
{
    public static IReadOnlyList<string> FindBreakingChanges(FileDescriptorSet released, FileDescriptorSet current)
    {
        var problems = new List<string>();
        var messages = Index<DescriptorProto>(current, (f, add) => Walk(f.Package, f.MessageType, add));
        var enums = Index<EnumDescriptorProto>(current, (f, add) => WalkEnums(f.Package, f.EnumType, f.MessageType, add));
        var services = Index<ServiceDescriptorProto>(current, (f, add) =>
        {
            foreach (ServiceDescriptorProto service in f.Service)
            {
                add($"{f.Package}.{service.Name}", service);
            }
        });

        foreach (FileDescriptorProto file in released.File)
        {
            Walk(file.Package, file.MessageType, (name, old) =>
            {
                if (!messages.TryGetValue(name, out DescriptorProto? now))
                {
                    problems.Add($"message {name} was removed");
                    return;
                }
                CompareMessage(name, old, now, problems);
            });
            WalkEnums(file.Package, file.EnumType, file.MessageType, (name, old) =>
            {
                if (!enums.TryGetValue(name, out EnumDescriptorProto? now))
                {
                    problems.Add($"enum {name} was removed");
                    return;
                }
                foreach (EnumValueDescriptorProto value in old.Value)
                {
                    EnumValueDescriptorProto? same = now.Value.FirstOrDefault(v => v.Number == value.Number);
                    if (same is null)
                    {
                        problems.Add($"enum value {name}.{value.Name} ({value.Number}) was removed");
                    }
                    else if (same.Name != value.Name)
                    {
                        problems.Add($"enum value {name} {value.Number} was renamed from {value.Name} to {same.Name} (breaks JSON)");
                    }
                }
            });
            foreach (ServiceDescriptorProto service in file.Service)
            {
                string name = $"{file.Package}.{service.Name}";
                if (!services.TryGetValue(name, out ServiceDescriptorProto? now))
                {
                    problems.Add($"service {name} was removed");
                    continue;
                }
                foreach (MethodDescriptorProto method in service.Method)
                {
                    MethodDescriptorProto? same = now.Method.FirstOrDefault(m => m.Name == method.Name);
                    if (same is null)
                    {
                        problems.Add($"rpc {name}.{method.Name} was removed");
                    }
                    else if (same.InputType != method.InputType || same.OutputType != method.OutputType
                        || same.ClientStreaming != method.ClientStreaming || same.ServerStreaming != method.ServerStreaming)
                    {
                        problems.Add($"rpc {name}.{method.Name} changed its request, response or streaming");
                    }
                    else if ((same.Options?.IdempotencyLevel ?? default) != (method.Options?.IdempotencyLevel ?? default))
                    {
                        problems.Add($"rpc {name}.{method.Name} changed its idempotency level (hosts decide retries on it)");
                    }
                }
            }
        }
        return problems;
    }

    private static void CompareMessage(string name, DescriptorProto old, DescriptorProto now, List<string> problems)
    {
        foreach (FieldDescriptorProto field in old.Field)
        {
            FieldDescriptorProto? same = now.Field.FirstOrDefault(f => f.Number == field.Number);
            if (same is null)
            {
                if (!now.ReservedRange.Any(r => field.Number >= r.Start && field.Number < r.End))
                {
                    problems.Add($"field {name}.{field.Name} ({field.Number}) was removed without reserving its number");
                }
                continue;
            }
            if (same.Type != field.Type || same.TypeName != field.TypeName)
            {
                problems.Add($"field {name}.{field.Name} ({field.Number}) changed type from {Describe(field)} to {Describe(same)}");
            }
            if (same.Label != field.Label || same.Proto3Optional != field.Proto3Optional)
            {
                problems.Add($"field {name}.{field.Name} ({field.Number}) changed its cardinality");
            }
            if (same.Name != field.Name || (same.JsonName.Length > 0 && field.JsonName.Length > 0 && same.JsonName != field.JsonName))
            {
                problems.Add($"field {name} {field.Number} was renamed from {field.Name} to {same.Name} (breaks JSON)");
            }
            string? oldOneof = field.HasOneofIndex ? old.OneofDecl[field.OneofIndex].Name : null;
            string? newOneof = same.HasOneofIndex ? now.OneofDecl[same.OneofIndex].Name : null;
            if (oldOneof != newOneof && !(field.Proto3Optional && same.Proto3Optional))
            {
                problems.Add($"field {name}.{field.Name} ({field.Number}) moved into or out of a oneof");
            }
        }
    }

    private static string Describe(FieldDescriptorProto field) => field.TypeName.Length > 0 ? field.TypeName : field.Type.ToString();

    private static Dictionary<string, T> Index<T>(FileDescriptorSet set, Action<FileDescriptorProto, Action<string, T>> walk)
    {
        var index = new Dictionary<string, T>(StringComparer.Ordinal);
        foreach (FileDescriptorProto file in set.File)
        {
            walk(file, (name, item) => index[name] = item);
        }
        return index;
    }

    private static void Walk(string scope, IEnumerable<DescriptorProto> messages, Action<string, DescriptorProto> visit)
    {
        foreach (DescriptorProto message in messages)
        {
            string name = $"{scope}.{message.Name}";
            visit(name, message);
            Walk(name, message.NestedType, visit);
        }
    }

    private static void WalkEnums(string scope, IEnumerable<EnumDescriptorProto> enums, IEnumerable<DescriptorProto> messages,
        Action<string, EnumDescriptorProto> visit)
    {
        foreach (EnumDescriptorProto e in enums)
        {
            visit($"{scope}.{e.Name}", e);
        }
        foreach (DescriptorProto message in messages)
        {
            WalkEnums($"{scope}.{message.Name}", message.EnumType, message.NestedType, visit);
        }
    }
}
