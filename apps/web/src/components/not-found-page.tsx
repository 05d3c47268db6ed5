import { Link } from "react-router";

export function NotFoundPage() {
  return (
    <div className="py-16 text-center">
      <h1 className="text-2xl font-bold">Page not found</h1>
      <p className="mt-2 text-slate-600">
        <Link to="/" className="text-brand-700 underline">
          Go to the volunteer page
        </Link>
      </p>
    </div>
  );
}
